// Package config holds Warden's example configuration files. Only the dev
// directory is built into the binary, for `wardend -dev`.
package config

import _ "embed"

// DevDirectoryLDIF is config/dev-directory.ldif: the demo people and groups
// served by dev mode's in-process LDAP directory.
//
//go:embed dev-directory.ldif
var DevDirectoryLDIF []byte
