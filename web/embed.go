// Package webassets holds the static files of the web UI (CSS, images),
// embedded in the binary. internal/web serves them under /static/ with
// content-hashed names and long cache lifetimes.
//
// The package is named webassets, not web, so that it does not collide with
// internal/web, which imports it. No inline script or style anywhere: the
// Content-Security-Policy allows only files from 'self'.
package webassets

import (
	"embed"
	"io/fs"
)

//go:embed static
var embedded embed.FS

// Static returns the files under static/ (warden.css, logo.svg, ...).
func Static() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		// fs.Sub fails only on an invalid path; "static" is a constant.
		panic("webassets: " + err.Error())
	}
	return sub
}
