// Package mfatemplates holds the HTML pages of second factors: the step
// after the password (and step-up), setting up a factor, the user's
// security page and the admin view of a user's factors, served by
// internal/mfa's UI through internal/web's layout.html. Files whose name
// starts with "_" are partials included in every page. No inline script
// or style.
package mfatemplates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
