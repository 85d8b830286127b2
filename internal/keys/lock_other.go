//go:build !unix

package keys

import "errors"

// lockDir is only implemented on Unix systems (flock(2)); Warden runs on
// Linux.
func lockDir(dir string) (unlock func(), err error) {
	return nil, errors.New("keys: locking the key directory needs a Unix system")
}
