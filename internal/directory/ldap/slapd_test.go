package ldap_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/testenv"
)

// ownSlapd is a throwaway OpenLDAP started by deploy/testenv/openldap.sh in
// a directory of its own, on ports of its own: for tests that stop or kill
// a server (never do that to the shared ones in /tmp/warden-testenv).
type ownSlapd struct {
	env map[string]string // the script's env file (LDAP_URL, LDAP_PID, ...)
	pid int
}

// startSlapds starts n throwaway slapd instances at once and stops them in
// Cleanup. It skips (fails under CI=true) when slapd or the tools the script
// needs are not installed.
func startSlapds(t testing.TB, n int) []*ownSlapd {
	t.Helper()
	for _, bin := range []string{"slapd", "slapadd", "slappasswd", "ldapsearch", "ldapmodify", "openssl"} {
		testenv.Binary(t, bin)
	}
	script, err := filepath.Abs("../../../deploy/testenv/openldap.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*ownSlapd, n)
	errs := make([]error, n)
	dirs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		// A short path: the ldapi socket lives in it (108-byte limit).
		dir, err := os.MkdirTemp("", "wldap")
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = dir
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		wg.Go(func() {
			cmd := exec.Command(script, "start")
			cmd.Env = append(os.Environ(), "TESTENV_DIR="+dir, "DIR="+filepath.Join(dir, "openldap"),
				"PORT=", "TLS_PORT=")
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = &scriptError{err: err, out: string(b)}
				return
			}
			env, err := readEnvFile(filepath.Join(dir, "openldap", "env"))
			if err != nil {
				errs[i] = err
				return
			}
			pid, err := strconv.Atoi(env["LDAP_PID"])
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = &ownSlapd{env: env, pid: pid}
		})
	}
	wg.Wait()
	for i := range n {
		t.Cleanup(func() {
			cmd := exec.Command(script, "stop")
			cmd.Env = append(os.Environ(), "TESTENV_DIR="+dirs[i], "DIR="+filepath.Join(dirs[i], "openldap"))
			_ = cmd.Run()
		})
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("starting a throwaway slapd: %v", err)
		}
	}
	return out
}

type scriptError struct {
	err error
	out string
}

func (e *scriptError) Error() string { return e.err.Error() + "\n" + e.out }

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		env[k] = v
	}
	return env, sc.Err()
}

// stop sends SIGSTOP: the process hangs, the kernel still accepts TCP
// connections for it. Cleanup sends SIGCONT (before the script stops it).
func (s *ownSlapd) stop(t testing.TB) {
	t.Helper()
	t.Cleanup(func() { _ = syscall.Kill(s.pid, syscall.SIGCONT) })
	if err := syscall.Kill(s.pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP slapd %d: %v", s.pid, err)
	}
	// kill returns before every thread has stopped: wait until each one is
	// in state T, or a request sent at once may still be answered.
	for range 500 {
		if allThreadsStopped(s.pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("slapd %d did not stop", s.pid)
}

func allThreadsStopped(pid int) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	if len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

func (s *ownSlapd) cont(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT slapd %d: %v", s.pid, err)
	}
}

// twoServerConfig: urls [a, b] of two throwaway servers (same seed).
func twoServerConfig(a, b *ownSlapd, timeout time.Duration) ldap.Config {
	cfg := ldap.Config{
		Type:         ldap.TypeOpenLDAP,
		URLs:         []string{a.env["LDAP_URL"], b.env["LDAP_URL"]},
		BaseDN:       a.env["LDAP_BASE_DN"],
		BindDN:       a.env["LDAP_BIND_DN"],
		BindPassword: a.env["LDAP_BIND_PW"],
		DialTimeout:  timeout,
		Timeout:      timeout,
		PoolSize:     8,
	}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	return cfg
}
