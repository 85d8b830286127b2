package awsfed

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Session tag and source identity limits (item 14 and 15; IAM User Guide
// id_session-tags.html, reference_iam-quotas.html; STS API Tag).
const (
	MaxSessionTags          = 50
	MaxTagKeyLength         = 128
	MaxTagValueLength       = 256
	MinSourceIdentityLength = 2
	MaxSourceIdentityLength = 64
)

// ErrInvalidTag is wrapped by ValidTagKey and ValidTagValue errors.
var ErrInvalidTag = errors.New("invalid session tag")

// ErrInvalidSourceIdentity is wrapped by ValidSourceIdentity errors.
var ErrInvalidSourceIdentity = errors.New("invalid source identity")

// ValidTagKey checks a session tag key against the STS Tag.Key pattern
// [\p{L}\p{Z}\p{N}_.:/=+\-@]+, 1–128 characters, and the reserved "aws:"
// prefix (any case). Keys are compared case-insensitively by AWS: callers
// that hold several keys must keep them unique under strings.EqualFold.
func ValidTagKey(k string) error {
	if k == "" {
		return fmt.Errorf("%w: key is empty", ErrInvalidTag)
	}
	if err := tagChars("key", k, MaxTagKeyLength); err != nil {
		return err
	}
	if len(k) >= 4 && strings.EqualFold(k[:4], "aws:") {
		return fmt.Errorf("%w: key %s starts with the reserved prefix \"aws:\"", ErrInvalidTag, Quote(k))
	}
	return nil
}

// ValidTagValue checks a session tag value against the STS Tag.Value
// pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]*, 0–256 characters.
func ValidTagValue(v string) error {
	return tagChars("value", v, MaxTagValueLength)
}

func tagChars(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidTag, what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s is %d characters long, at most %d allowed", ErrInvalidTag, what, n, max)
	}
	for i, r := range s {
		if !IsTagRune(r) {
			return fmt.Errorf("%w: %s %s has the character %q at byte %d; allowed are letters, digits, spaces and _ . : / = + - @", ErrInvalidTag, what, Quote(s), r, i)
		}
	}
	return nil
}

// IsTagRune reports whether r may appear in a session tag key or value:
// a letter (\p{L}), a separator such as a space (\p{Z}), a number (\p{N}),
// or one of _ . : / = + - @.
func IsTagRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isWord(byte(r)) || r == ' ' || strings.IndexByte("_.:/=+-@", byte(r)) >= 0
	}
	return unicode.IsLetter(r) || unicode.In(r, unicode.Z) || unicode.IsNumber(r)
}

// ValidSourceIdentity checks a SourceIdentity value: 2–64 characters of
// [\w+=,.@-] (ASCII), not starting with "aws:" (item 15; the prefix check
// is redundant with the character set and kept for the record).
func ValidSourceIdentity(s string) error {
	switch {
	case len(s) < MinSourceIdentityLength || len(s) > MaxSourceIdentityLength:
		return fmt.Errorf("%w: must be %d–%d characters, got %d", ErrInvalidSourceIdentity, MinSourceIdentityLength, MaxSourceIdentityLength, utf8.RuneCountInString(s))
	case len(s) >= 4 && strings.EqualFold(s[:4], "aws:"):
		return fmt.Errorf("%w: %s starts with the reserved prefix \"aws:\"", ErrInvalidSourceIdentity, Quote(s))
	}
	for i := 0; i < len(s); i++ {
		if !IsRoleNameByte(s[i]) {
			return fmt.Errorf("%w: %s has a character outside [A-Za-z0-9_+=,.@-] at byte %d", ErrInvalidSourceIdentity, Quote(s), i)
		}
	}
	return nil
}
