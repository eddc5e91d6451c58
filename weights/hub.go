package weights

import (
	"net/url"
	"os"
	"regexp"
	"strings"
)

// HubHost is where Hugging Face ids resolve to, unless the environment
// variable HF_ENDPOINT (as huggingface_hub reads it: a mirror, or a local
// server in tests) names another.
const HubHost = "https://huggingface.co"

func hubEndpoint() string {
	if e := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"); e != "" {
		return e
	}
	return HubHost
}

// hubID is "org/name" or "org/name@revision": Hugging Face's repository
// names (letters, digits, '-', '_', '.'; exactly one '/') and a revision
// (branch, tag or commit; may hold '/', as in "refs/pr/1").
var hubID = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@([A-Za-z0-9][A-Za-z0-9_./-]*))?$`)

// HubFile returns the URL of file (e.g. "model.safetensors",
// "tokenizer.json") in the Hugging Face repository id ("org/name" or
// "org/name@revision"; default revision "main"), and false when id is not
// of that form. A name ending in ".safetensors" is a file name, not an id.
// Callers that also take local paths check for a file of that name first.
func HubFile(id, file string) (string, bool) {
	m := hubID.FindStringSubmatch(id)
	if m == nil || strings.HasSuffix(m[1], ".safetensors") || strings.Contains(id, "..") {
		return "", false
	}
	rev := m[2]
	if rev == "" {
		rev = "main"
	}
	return hubEndpoint() + "/" + m[1] + "/resolve/" + url.PathEscape(rev) + "/" + file, true
}
