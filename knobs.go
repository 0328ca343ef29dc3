package dmabench

// Knobs walks a config subtree (maps within maps, as a YAML section
// decodes) and calls set with the dotted key under prefix and the value
// of each leaf.
func Knobs(prefix string, v any, set func(key string, value any)) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			Knobs(prefix+"."+k, x, set)
		}
		return
	}
	set(prefix, v)
}
