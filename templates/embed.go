// Package templates holds the HTML templates of the web UI, embedded in the
// binary. The templates are parsed once, by internal/web at start.
//
// Every page is rendered through layout.html: a page file defines the blocks
// "title" and "content". Templates contain no inline script or style (the
// Content-Security-Policy forbids both).
package templates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
