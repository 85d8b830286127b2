package admin

import (
	"testing"

	"github.com/wardenidp/warden/internal/rolemap"
)

// TestTagAttributesMustBeRead: a rule set whose tag needs an attribute the
// directory does not read is refused on save and restore, with the key
// path; when the directory reads it (any case), or nothing is known of the
// directory, it is not.
func TestTagAttributesMustBeRead(t *testing.T) {
	rs, err := rolemap.ParseYAML([]byte("tags:\n  attributes:\n    - attribute: email\n      key: email\n    - attribute: department\n      key: department\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ps := rs.Validate(); len(ps) != 0 {
		t.Fatalf("the rule set itself: %v", ps)
	}
	a := &Admin{fetched: []string{"mail"}}
	ps := a.validate(rs)
	if len(ps) != 1 || ps[0].Path != "tags.attributes[1].attribute" {
		t.Fatalf("unread department: %v", ps)
	}
	a.fetched = []string{"Department"}
	if ps := a.validate(rs); len(ps) != 0 {
		t.Errorf("read department: %v", ps)
	}
	a.fetched = nil
	if ps := a.validate(rs); len(ps) != 0 {
		t.Errorf("no directory configuration: %v", ps)
	}
}
