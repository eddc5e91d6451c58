//go:build !unix

package host

import (
	"errors"
	"os"
)

// mappable: without mmap the compiled weights would be read into memory,
// which costs what deriving them does; the cache is off (compiled.go).
const mappable = false

func mapFile(*os.File, int64) ([]byte, func(), error) {
	return nil, nil, errors.New("no file mappings on this system")
}

func fileIdentity(os.FileInfo) string { return "" }
