package main

import (
	"encoding/json"
	"fmt"
	"math"
)

// encodeLine returns l as one JSON line. It cannot fail on a value: an
// embedding holding a NaN or an infinity (which encoding/json refuses, and
// which the module already reports as an InvalidModel error) becomes that
// error line instead, and strings that are not UTF-8 are encoded by
// encoding/json with U+FFFD replacements. Any other marshalling failure
// (none is known) still yields a valid error line. failed reports whether
// the line is an error line.
func encodeLine(l line) (b []byte, failed bool) {
	for i, v := range l.Embedding {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			l.Embedding = nil
			l.Error = &errJSON{Code: "InvalidModel", Message: fmt.Sprintf("the model produced a non-finite embedding (component %d is %v)", i, v)}
			break
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		l = line{Source: l.Source, Error: &errJSON{Code: "InvalidModel", Message: "cannot encode the result: " + err.Error()}}
		b, _ = json.Marshal(l)
	}
	return append(b, '\n'), l.Error != nil
}
