// Package templates holds the HTML templates of the web UI, embedded in the
// binary. The templates are parsed once, by internal/web at start.
//
// Every page is rendered through layout.html: a page file defines the blocks
// "title" and "content". Templates contain no inline script or style (the
// Content-Security-Policy forbids both).
package templates

import "embed"

// FS holds every *.html file of this directory: layout.html and the pages
// internal/web renders itself (the sign-in, account, sign-out and error
// pages) take their files from it by name.
//
//go:embed *.html
var FS embed.FS

// Portal holds the pages of the portal (internal/portal, a web Mount): the
// home page with the user's AWS roles, the SAML post page of a console
// sign-in, the confirmation of a console link from another site and the
// Access keys panel.
//
//go:embed home.html saml_post.html console_confirm.html access_keys.html
var Portal embed.FS
