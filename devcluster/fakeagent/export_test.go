package fakeagent

// NewUUID is newUUID for the black-box tests: the version-4 UUID the
// agent itself makes, which stout's UUID::fromBytes accepts.
var NewUUID = newUUID
