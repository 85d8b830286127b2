// Package admintemplates holds the HTML templates of the admin UI
// (internal/admin), embedded in the binary. Each page is rendered by
// internal/web through ../layout.html; files whose name starts with "_"
// are partials included in every admin page. No inline script or style.
package admintemplates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
