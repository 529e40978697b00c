package format

// NumberText returns the text of the JSON number at path (object keys,
// outermost first) in the JSON document b, as written: "100.00", not the
// float64 100 the decoder makes of it. It reports false when b has no
// number there, or when the path is not plain (a key written with escapes
// is not matched). It scans without decoding, for aggregates that keep an
// input's decimal scale (SUM(100.00, 20.00) = 120.00, as SQL's NUMERIC).
func NumberText(b []byte, path []string) ([]byte, bool) {
	s := scanner{b: b}
	for _, key := range path {
		if !s.find(key) {
			return nil, false
		}
	}
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		s.i++
	}
	if s.i == start {
		return nil, false
	}
	return s.b[start:s.i:s.i], true
}

// scanner walks a JSON document that already decoded without error.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// find moves into the object at the scanner's position to the value of
// key, the last one when the key repeats (as the decoder keeps the last).
func (s *scanner) find(key string) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	found := -1
	for {
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case '}':
			if found < 0 {
				return false
			}
			s.i = found
			return true
		case ',':
			s.i++
			continue
		case '"':
		default:
			return false
		}
		k, plain := s.str()
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if plain && string(k) == key {
			found = s.i
		}
		if !s.skip() {
			return false
		}
	}
}

// str reads a string at the scanner's position; plain is false when it
// holds escapes (its text is then not its value).
func (s *scanner) str() ([]byte, bool) {
	s.i++ // the opening quote
	start, plain := s.i, true
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			plain = false
			s.i += 2
			continue
		case '"':
			v := s.b[start:s.i]
			s.i++
			return v, plain
		}
		s.i++
	}
	return nil, false
}

// skip moves past the value at the scanner's position.
func (s *scanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		s.str()
		return true
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	for s.i < len(s.b) && s.b[s.i] != ',' && s.b[s.i] != '}' && s.b[s.i] != ']' {
		s.i++
	}
	return true
}
