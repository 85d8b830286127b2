// Package elevtemplates holds the HTML pages of time-boxed elevation: the
// request form, the user's requests and those to decide (/elevations), one
// request, and the admin list (/admin/elevations), served by
// internal/elevation's UI through internal/web's layout.html. Files whose
// name starts with "_" are partials included in every page. No inline
// script or style.
package elevtemplates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
