// Package devicetemplates holds the HTML pages of the device verification
// flow (RFC 8628 §3.3: the user enters the code shown by the device, then
// approves or denies), served by internal/oidcop's DeviceUI through
// internal/web's layout.html. Files whose name starts with "_" are partials
// included in every device page. No inline script or style.
package devicetemplates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
