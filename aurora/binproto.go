package aurora

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// wireType is a Thrift type id as the binary protocol writes it before
// every field and in container headers (TType in Thrift's libraries,
// lib/go/thrift/type.go).
type wireType byte

// The wire types of Thrift's binary protocol. Aurora's api.thrift uses
// every one but VOID.
const (
	tStop   wireType = 0
	tVoid   wireType = 1
	tBool   wireType = 2
	tByte   wireType = 3
	tDouble wireType = 4
	tI16    wireType = 6
	tI32    wireType = 8
	tI64    wireType = 10
	tString wireType = 11
	tStruct wireType = 12
	tMap    wireType = 13
	tSet    wireType = 14
	tList   wireType = 15
)

func (t wireType) String() string {
	switch t {
	case tStop:
		return "STOP"
	case tVoid:
		return "VOID"
	case tBool:
		return "BOOL"
	case tByte:
		return "BYTE"
	case tDouble:
		return "DOUBLE"
	case tI16:
		return "I16"
	case tI32:
		return "I32"
	case tI64:
		return "I64"
	case tString:
		return "STRING"
	case tStruct:
		return "STRUCT"
	case tMap:
		return "MAP"
	case tSet:
		return "SET"
	case tList:
		return "LIST"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// skipDepth is how deeply nested values of unknown fields may be, as
// Thrift's generated code allows (DEFAULT_RECURSION_DEPTH, 64).
const skipDepth = 64

var (
	errNegativeSize = errors.New("negative size")
	errTooLong      = errors.New("size exceeds the rest of the input")
	errTooDeep      = errors.New("values nested more than 64 deep")
	errUnknownType  = errors.New("unknown wire type")
)

// binReader reads Thrift's binary protocol (TBinaryProtocol, strict or
// not: an AssignedTask is a bare struct, no message header) from memory:
// big-endian integers, a string as an i32 length and its bytes, a struct
// as fields (type byte, i16 id, value) up to a STOP byte, a list or set as
// element type and i32 count, a map as key type, value type and i32 count.
// It is all dewar needs of the Thrift library, without the library's
// transports, servers and their dependencies in every executor's memory.
type binReader struct {
	b   []byte
	off int
}

func (r *binReader) next(n int) ([]byte, error) {
	if n > len(r.b)-r.off {
		r.off = len(r.b)
		return nil, io.ErrUnexpectedEOF
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *binReader) byte() (byte, error) {
	p, err := r.next(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *binReader) i16() (int16, error) {
	p, err := r.next(2)
	if err != nil {
		return 0, err
	}
	return int16(binary.BigEndian.Uint16(p)), nil
}

func (r *binReader) i32() (int32, error) {
	p, err := r.next(4)
	if err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(p)), nil
}

func (r *binReader) i64() (int64, error) {
	p, err := r.next(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

func (r *binReader) double() (float64, error) {
	v, err := r.i64()
	return math.Float64frombits(uint64(v)), err
}

// bool is true only for 1, as Thrift's Go and Java readers decide.
func (r *binReader) bool() (bool, error) {
	b, err := r.byte()
	return b == 1, err
}

// size reads a length or element count. None can exceed the bytes left
// (every element takes at least one): a corrupt count fails at once
// instead of after a long loop.
func (r *binReader) size() (int, error) {
	n, err := r.i32()
	switch {
	case err != nil:
		return 0, err
	case n < 0:
		return 0, fmt.Errorf("%w %d", errNegativeSize, n)
	case int(n) > len(r.b)-r.off:
		return 0, fmt.Errorf("%w: %d > %d", errTooLong, n, len(r.b)-r.off)
	}
	return int(n), nil
}

func (r *binReader) string() (string, error) {
	n, err := r.size()
	if err != nil {
		return "", err
	}
	p, err := r.next(n)
	return string(p), err
}

// fieldHeader reads a field's type and id; the type is tStop (and the id
// 0) after the last field of a struct.
func (r *binReader) fieldHeader() (wireType, int16, error) {
	t, err := r.byte()
	if err != nil || wireType(t) == tStop {
		return wireType(t), 0, err
	}
	id, err := r.i16()
	return wireType(t), id, err
}

// listHeader reads the header of a list or a set (the same bytes).
func (r *binReader) listHeader() (wireType, int, error) {
	t, err := r.byte()
	if err != nil {
		return 0, 0, err
	}
	n, err := r.size()
	return wireType(t), n, err
}

func (r *binReader) mapHeader() (k, v wireType, n int, err error) {
	kb, err := r.byte()
	if err != nil {
		return 0, 0, 0, err
	}
	vb, err := r.byte()
	if err != nil {
		return 0, 0, 0, err
	}
	n, err = r.size()
	return wireType(kb), wireType(vb), n, err
}

// skip reads past one value of type t, as generated Thrift code skips a
// field it does not know.
func (r *binReader) skip(t wireType, depth int) error {
	if depth <= 0 {
		return errTooDeep
	}
	var err error
	switch t {
	case tBool, tByte:
		_, err = r.next(1)
	case tI16:
		_, err = r.next(2)
	case tI32:
		_, err = r.next(4)
	case tI64, tDouble:
		_, err = r.next(8)
	case tString:
		var n int
		if n, err = r.size(); err == nil {
			_, err = r.next(n)
		}
	case tStruct:
		for {
			ft, _, err := r.fieldHeader()
			if err != nil || ft == tStop {
				return err
			}
			if err := r.skip(ft, depth-1); err != nil {
				return err
			}
		}
	case tMap:
		k, v, n, err := r.mapHeader()
		for i := 0; err == nil && i < n; i++ {
			if err = r.skip(k, depth-1); err == nil {
				err = r.skip(v, depth-1)
			}
		}
		return err
	case tSet, tList:
		et, n, err := r.listHeader()
		for i := 0; err == nil && i < n; i++ {
			err = r.skip(et, depth-1)
		}
		return err
	default:
		return fmt.Errorf("%w %d", errUnknownType, byte(t))
	}
	return err
}

// binWriter writes Thrift's binary protocol into memory; see binReader.
type binWriter struct {
	b   []byte
	err error // the first size Thrift cannot express
}

func (w *binWriter) byte(v byte) { w.b = append(w.b, v) }
func (w *binWriter) i16(v int16) { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *binWriter) i32(v int32) { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *binWriter) i64(v int64) { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }

func (w *binWriter) double(v float64) { w.i64(int64(math.Float64bits(v))) }

func (w *binWriter) bool(v bool) {
	if v {
		w.byte(1)
	} else {
		w.byte(0)
	}
}

func (w *binWriter) size(n int) {
	if n > math.MaxInt32 && w.err == nil {
		w.err = fmt.Errorf("%d elements or bytes: more than Thrift's i32 sizes can say", n)
	}
	w.i32(int32(n))
}

func (w *binWriter) string(s string) {
	w.size(len(s))
	w.b = append(w.b, s...)
}

func (w *binWriter) fieldHeader(t wireType, id int16) {
	w.byte(byte(t))
	w.i16(id)
}

func (w *binWriter) stop() { w.byte(byte(tStop)) }

func (w *binWriter) listHeader(elem wireType, n int) {
	w.byte(byte(elem))
	w.size(n)
}

func (w *binWriter) mapHeader(k, v wireType, n int) {
	w.byte(byte(k))
	w.byte(byte(v))
	w.size(n)
}
