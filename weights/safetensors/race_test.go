//go:build race

package safetensors

// raceEnabled: the race detector inflates allocation counts.
const raceEnabled = true
