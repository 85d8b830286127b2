package config

import (
	"log/slog"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Redaction replaces a secret's value in Redacted output.
const Redaction = "REDACTED"

// isSecretName reports whether a key holds a secret, by its name: password,
// secret, token and private_key, alone or as the end of the name
// (bind_password, sentinel_password, client_secret). The rule is by name so
// that a secret key a component adds later is covered without a list to
// keep up to date. A secret is never quoted in an error and is replaced in
// Redacted.
func isSecretName(name string) bool {
	for _, s := range []string{"password", "secret", "token", "private_key"} {
		if name == s || strings.HasSuffix(name, "_"+s) {
			return true
		}
	}
	return false
}

// SecretKeys returns the key paths of every secret in the configuration
// (directory.bind_password, redis.password, ...), in field order. Each may
// also be given as <key>_file.
func SecretKeys() []string {
	var out []string
	walkKeys(reflect.TypeFor[Config](), "", func(path string, f field, _ reflect.Type) {
		if f.secret {
			out = append(out, path)
		}
	})
	return out
}

// walkKeys calls fn for every leaf key under struct type t (a key whose
// value is not a struct: a scalar, a duration or a list), with its path.
func walkKeys(t reflect.Type, path string, fn func(path string, f field, t reflect.Type)) {
	for _, f := range structFields(t) {
		ft := t.FieldByIndex(f.index).Type
		p := joinKey(path, f.name)
		if ft.Kind() == reflect.Struct && ft != durationType {
			walkKeys(ft, p, fn)
			continue
		}
		fn(p, f, ft)
	}
}

// Redacted returns a copy of c in which every non-empty secret is replaced
// by Redaction, safe to print or log. c is not changed.
func (c Config) Redacted() Config {
	redact(reflect.ValueOf(&c).Elem())
	return c
}

func redact(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for _, f := range structFields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if f.secret && fv.Kind() == reflect.String {
				if fv.String() != "" {
					fv.SetString(Redaction)
				}
				continue
			}
			redact(fv)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			cp := reflect.New(v.Type().Elem())
			cp.Elem().Set(v.Elem())
			redact(cp.Elem())
			v.Set(cp)
		}
	case reflect.Slice:
		// A copy: the caller's Config shares the backing array
		// (oidc.clients[].secret).
		if !v.IsNil() {
			cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(cp, v)
			for i := range cp.Len() {
				redact(cp.Index(i))
			}
			v.Set(cp)
		}
	}
}

// String returns the configuration as YAML with secrets redacted, so that
// printing a Config by accident shows no secret.
func (c Config) String() string {
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return "config: " + err.Error()
	}
	return string(out)
}

// LogValue makes slog log the redacted YAML, never the secrets.
func (c Config) LogValue() slog.Value {
	return slog.StringValue(c.String())
}
