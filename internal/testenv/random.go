package testenv

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomHex returns 2n random hex digits: the suffix that keeps the names
// of parallel tests' namespaces, bridges and networks apart. (crypto/rand's
// Read never fails since Go 1.24.)
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
