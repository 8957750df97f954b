package dsl

import (
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileSize bounds what file() reads: it is meant for keys, certificates
// and small templates, not data.
const maxFileSize = 1 << 20

// fileFunc is the load-time function file("path"): the contents of a UTF-8
// text file, the path relative to dir (the pipeline file's directory).
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "The contents of a text file, relative to the pipeline file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			st, err := os.Stat(p)
			if err != nil {
				return cty.NilVal, &callError{
					Summary: fmt.Sprintf("cannot read file %q", p),
					Detail:  "file() paths are relative to the pipeline file's directory; check the path exists and is readable.",
				}
			}
			if st.IsDir() || st.Size() > maxFileSize {
				return cty.NilVal, &callError{
					Summary: fmt.Sprintf("file %q is not a text file of at most 1 MiB", p),
					Detail:  "file() reads small text files such as keys and certificates.",
				}
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, &callError{Summary: fmt.Sprintf("cannot read file %q", p), Detail: err.Error()}
			}
			if !utf8.Valid(b) {
				return cty.NilVal, &callError{
					Summary: fmt.Sprintf("file %q is not UTF-8 text", p),
					Detail:  "file() reads text files only.",
				}
			}
			return cty.StringVal(string(b)), nil
		},
	})
}
