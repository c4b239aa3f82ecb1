package aurora

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// JobError says which field of the executor config is wrong.
type JobError struct {
	Field string // pystachio path, e.g. "task.processes[1].max_failures"; empty for the document
	Err   error
}

func (e *JobError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("aurora executor config: %v", e.Err)
	}
	return fmt.Sprintf("aurora executor config: %s: %v", e.Field, e.Err)
}

func (e *JobError) Unwrap() error { return e.Err }

// object is one JSON object of the executor config, with its path for errors.
// pystachio coerces scalars (an Integer may arrive as "5", a Boolean as 1), so
// the getters accept what pystachio accepts and reject the rest, naming the
// field.
type object struct {
	path string
	m    map[string]any
}

func (o object) at(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func jobErr(path, format string, args ...any) error {
	return &JobError{Field: path, Err: fmt.Errorf(format, args...)}
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// has reports whether key is present and not null (pystachio writes unset
// optional fields by leaving them out, but null means the same).
func (o object) has(key string) bool {
	v, ok := o.m[key]
	return ok && v != nil
}

func (o object) required(key string) error {
	if !o.has(key) {
		return jobErr(o.at(key), "required field is missing")
	}
	return nil
}

func (o object) str(key, def string) (string, error) {
	if !o.has(key) {
		return def, nil
	}
	switch v := o.m[key].(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", jobErr(o.at(key), "want a string, got %s", describe(v))
	}
}

func (o object) integer(key string, def int) (int, error) {
	if !o.has(key) {
		return def, nil
	}
	var text string
	switch v := o.m[key].(type) {
	case json.Number:
		text = v.String()
	case string:
		text = strings.TrimSpace(v)
	default:
		return 0, jobErr(o.at(key), "want an integer, got %s", describe(v))
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// 5.0 is what a JSON encoder may make of an integral float.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, jobErr(o.at(key), "want an integer, got %q", text)
		}
		n = int64(f)
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return 0, jobErr(o.at(key), "integer %d out of range", n)
	}
	return int(n), nil
}

func (o object) int64(key string) (int64, error) {
	if !o.has(key) {
		return 0, nil
	}
	var text string
	switch v := o.m[key].(type) {
	case json.Number:
		text = v.String()
	case string:
		text = strings.TrimSpace(v)
	default:
		return 0, jobErr(o.at(key), "want an integer, got %s", describe(v))
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return 0, jobErr(o.at(key), "want an integer, got %q", text)
		}
		n = int64(f)
	}
	return n, nil
}

func (o object) float(key string, def float64) (float64, error) {
	if !o.has(key) {
		return def, nil
	}
	var text string
	switch v := o.m[key].(type) {
	case json.Number:
		text = v.String()
	case string:
		text = strings.TrimSpace(v)
	default:
		return 0, jobErr(o.at(key), "want a number, got %s", describe(v))
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, jobErr(o.at(key), "want a number, got %q", text)
	}
	return f, nil
}

func (o object) boolean(key string, def bool) (bool, error) {
	if !o.has(key) {
		return def, nil
	}
	switch v := o.m[key].(type) {
	case bool:
		return v, nil
	case json.Number:
		switch v.String() {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	}
	return false, jobErr(o.at(key), "want a boolean, got %s", describe(o.m[key]))
}

// obj returns the nested object at key; ok is false when it is absent.
func (o object) obj(key string) (object, bool, error) {
	if !o.has(key) {
		return object{}, false, nil
	}
	m, isObj := o.m[key].(map[string]any)
	if !isObj {
		return object{}, false, jobErr(o.at(key), "want an object, got %s", describe(o.m[key]))
	}
	return object{path: o.at(key), m: m}, true, nil
}

// list returns the elements of the list at key with their paths.
func (o object) list(key string) ([]any, error) {
	if !o.has(key) {
		return nil, nil
	}
	l, ok := o.m[key].([]any)
	if !ok {
		return nil, jobErr(o.at(key), "want a list, got %s", describe(o.m[key]))
	}
	return l, nil
}

func (o object) index(key string, i int) string { return fmt.Sprintf("%s[%d]", o.at(key), i) }

// objects returns the list at key, each element an object.
func (o object) objects(key string) ([]object, error) {
	l, err := o.list(key)
	if err != nil {
		return nil, err
	}
	out := make([]object, 0, len(l))
	for i, v := range l {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, jobErr(o.index(key, i), "want an object, got %s", describe(v))
		}
		out = append(out, object{path: o.index(key, i), m: m})
	}
	return out, nil
}

func (o object) strings(key string) ([]string, error) {
	l, err := o.list(key)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(l))
	for i, v := range l {
		s, ok := v.(string)
		if !ok {
			return nil, jobErr(o.index(key, i), "want a string, got %s", describe(v))
		}
		out = append(out, s)
	}
	return out, nil
}

// stringMap reads a pystachio Map(String, String); numbers are kept as text
// because pystachio coerces them to String.
func (o object) stringMap(key string) (map[string]string, bool, error) {
	sub, ok, err := o.obj(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	out := make(map[string]string, len(sub.m))
	for k := range sub.m {
		v, err := sub.str(k, "")
		if err != nil {
			return nil, false, err
		}
		out[k] = v
	}
	return out, true, nil
}
