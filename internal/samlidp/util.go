package samlidp

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
)

// funcClock is the injected clock as the clockwork.Clock crewjam's
// signature checks ask for; only Now is ours, timers are real.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time                  { return c.now() }
func (c funcClock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c funcClock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }

// slogPrinter adapts the logger to crewjam's logger.Interface. crewjam
// only prints from paths Warden does not use; Fatal* log (never exit).
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(f string, v ...any) { p.l.Warn("saml: " + fmt.Sprintf(f, v...)) }
func (p slogPrinter) Print(v ...any)            { p.l.Warn("saml: " + fmt.Sprint(v...)) }
func (p slogPrinter) Println(v ...any)          { p.l.Warn("saml: " + fmt.Sprint(v...)) }
func (p slogPrinter) Fatal(v ...any)            { p.l.Error("saml: " + fmt.Sprint(v...)) }
func (p slogPrinter) Fatalf(f string, v ...any) { p.l.Error("saml: " + fmt.Sprintf(f, v...)) }
func (p slogPrinter) Fatalln(v ...any)          { p.l.Error("saml: " + fmt.Sprint(v...)) }
func (p slogPrinter) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (p slogPrinter) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (p slogPrinter) Panicln(v ...any)          { panic(fmt.Sprint(v...)) }

// newID returns a fresh SAML ID: "_" and 20 random bytes in hex (an
// xs:ID must be an NCName, so it cannot start with a digit; saml-core
// §1.3.4 asks for at least 128 bits of randomness).
func (i *IdP) newID() (string, error) {
	var b [20]byte
	if _, err := io.ReadFull(i.rand, b[:]); err != nil {
		return "", fmt.Errorf("samlidp: random: %w", err)
	}
	return "_" + hex.EncodeToString(b[:]), nil
}
