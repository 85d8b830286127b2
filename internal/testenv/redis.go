package testenv

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server of one test's own (never the shared one of
// deploy/testenv), which the test may stop (SIGSTOP) or kill.
type RedisServer struct {
	Addr string
	Cmd  *exec.Cmd
}

// OwnRedis starts a redis-server without persistence on a free loopback
// port for the test, waits until it accepts connections, and stops it when
// the test ends (resuming it first if the test left it stopped).
func OwnRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin := Binary(t, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port)}
	r.Cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := r.Cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Cmd.Process.Signal(syscall.SIGCONT) // never leave it stopped
		r.Kill()
	})
	for range 500 {
		if c, err := net.Dial("tcp", r.Addr); err == nil {
			_ = c.Close()
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s not ready", r.Addr)
	return nil
}

// Kill ends the server (connections are then refused); a second call does
// nothing.
func (r *RedisServer) Kill() {
	if r.Cmd.ProcessState == nil {
		_ = r.Cmd.Process.Kill()
		_ = r.Cmd.Wait()
	}
}
