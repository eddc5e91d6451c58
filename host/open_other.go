//go:build !unix

package host

import "os"

// openNonBlocking is a plain open where the OS has no O_NONBLOCK; the
// fstat check after it still refuses what is not a regular file.
func openNonBlocking(path string) (*os.File, error) { return os.Open(path) }
