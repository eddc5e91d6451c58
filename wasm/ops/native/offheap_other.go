//go:build !unix

package native

import "errors"

func mapFloats(int) ([]float32, func(), error) {
	return nil, nil, errors.New("no anonymous mappings on this OS")
}
