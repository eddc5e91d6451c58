package module

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedIsFresh rebuilds ./wasm exactly as `make build` does and
// compares it with the embedded copy, so a change to the module's sources
// that was not followed by `make build` (which refreshes imgembed.wasm)
// fails the test suite instead of shipping a stale module in the Go host.
func TestEmbeddedIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the wasm module (~10 s); skipped with -short")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "wasm", "main.go")); err != nil {
		t.Fatalf("module sources not found at %s/wasm: %v", root, err)
	}
	out := filepath.Join(t.TempDir(), "imgembed.wasm")
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", out, "./wasm")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, msg)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, Wasm) {
		t.Fatalf("host/internal/module/imgembed.wasm is stale (embedded %d bytes sha256 %s, fresh build %d bytes sha256 %s): run `make build`",
			len(Wasm), short(Wasm), len(fresh), short(fresh))
	}
}

func short(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:8])
}

func TestEmbeddedLooksLikeWasm(t *testing.T) {
	if !bytes.HasPrefix(Wasm, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("embedded module does not start with the wasm magic (%d bytes)", len(Wasm))
	}
}
