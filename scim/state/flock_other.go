//go:build !unix

package state

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held by another writer")

// flock is not implemented off Unix: scimbridge ships for Linux (the container image); a build for
// another system refuses to write rather than run without the lock.
func flock(*os.File) error {
	return errors.New("state locks need a Unix system")
}
