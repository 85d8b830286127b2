// Package config holds Warden's example configuration files. The dev
// directory and the example rules are built into the binary, for
// `wardend -dev`.
package config

import _ "embed"

// DevDirectoryLDIF is config/dev-directory.ldif: the demo people and groups
// served by dev mode's in-process LDAP directory.
//
//go:embed dev-directory.ldif
var DevDirectoryLDIF []byte

// ExampleRules is config/mappings.example.yaml: dev mode seeds its rule set
// from it.
//
//go:embed mappings.example.yaml
var ExampleRules []byte
