package preprocess

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// readF32 reads a golden tensor file: raw little-endian float32 values, no
// header (the layout of testdata/golden/pixels-*/*.f32).
func readF32(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("preprocess: %s: %d bytes is not a whole number of float32s", path, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
