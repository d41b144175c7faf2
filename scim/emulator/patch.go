package emulator

import (
	"fmt"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// patchOp is one decoded PATCH operation. hasValue distinguishes a missing value from null.
type patchOp struct {
	op       string
	path     string
	value    any
	hasValue bool
}

// decodePatch decodes a SCIM PatchOp body: schemas must name the PatchOp message and
// Operations must hold at least one operation.
func decodePatch(body []byte) ([]patchOp, error) {
	raw, err := decodeJSONObject(body)
	if err != nil {
		return nil, err
	}
	var (
		ops        []any
		hasOps     bool
		hasSchemas bool
	)
	for k, v := range raw {
		switch strings.ToLower(k) {
		case "schemas":
			arr, ok := v.([]any)
			if !ok || len(arr) != 1 || arr[0] != patchOpURN {
				return nil, badRequest("schemas must be [%q]", patchOpURN)
			}
			hasSchemas = true
		case "operations":
			arr, ok := v.([]any)
			if !ok {
				return nil, badRequest("Operations must be an array, got %s", jsonKind(v))
			}
			ops, hasOps = arr, true
		default:
			return nil, badRequest("unknown attribute %q in PATCH request", k)
		}
	}
	if !hasSchemas {
		return nil, badRequest("schemas is required and must be [%q]", patchOpURN)
	}
	if !hasOps || len(ops) == 0 {
		return nil, badRequest("Operations must hold at least one operation")
	}
	out := make([]patchOp, 0, len(ops))
	for i, o := range ops {
		m, ok := o.(map[string]any)
		if !ok {
			return nil, badRequest("Operations[%d] must be an object", i)
		}
		var p patchOp
		for k, v := range m {
			switch strings.ToLower(k) {
			case "op":
				s, ok := v.(string)
				if !ok {
					return nil, badRequest("Operations[%d].op must be a string", i)
				}
				p.op = strings.ToLower(s)
			case "path":
				s, ok := v.(string)
				if !ok {
					return nil, badRequest("Operations[%d].path must be a string", i)
				}
				p.path = strings.TrimSpace(s)
			case "value":
				p.value, p.hasValue = v, v != nil
			default:
				return nil, badRequest("unknown attribute %q in Operations[%d]", k, i)
			}
		}
		switch p.op {
		case "add", "replace":
			if !p.hasValue {
				return nil, badRequest("Operations[%d]: value is required for %s", i, p.op)
			}
		case "remove":
			if p.path == "" {
				return nil, badRequest("Operations[%d]: path is required for remove", i)
			}
		default:
			return nil, badRequest("Operations[%d]: op must be add, replace or remove, got %q", i, p.op)
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePatchPath parses a PATCH path, turning parser failures (and panics) into 400s.
func parsePatchPath(p string) (path filter.Path, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = badRequest("invalid path %q", p)
		}
	}()
	if len(p) > 1024 {
		return path, badRequest("path is longer than 1024 characters")
	}
	path, err = filter.ParsePath([]byte(p))
	if err != nil {
		return path, badRequest("invalid path %q: %v", p, err)
	}
	return path, nil
}

// topAttribute returns the canonical top-level attribute a user PATCH path touches.
func topAttribute(p string) (string, error) {
	path, err := parsePatchPath(p)
	if err != nil {
		return "", err
	}
	uri := path.AttributePath.URI()
	if strings.EqualFold(uri, enterpriseSchemaURN) {
		return enterpriseSchemaURN, nil
	}
	if a, ok := userSpecs[strings.ToLower(path.AttributePath.AttributeName)]; ok {
		return a.name, nil
	}
	return path.AttributePath.AttributeName, nil
}

// checkUserPatchRules enforces Identity Center's rules on the operations of a user PATCH:
// userName and active cannot be removed, and may appear in at most one operation.
func checkUserPatchRules(ops []patchOp) error {
	seen := map[string]int{}
	for i, op := range ops {
		touched := map[string]bool{}
		if op.path != "" {
			top, err := topAttribute(op.path)
			if err != nil {
				return err
			}
			touched[top] = true
		} else {
			m, ok := op.value.(map[string]any)
			if !ok {
				return badRequest("Operations[%d]: value must be an object when path is absent", i)
			}
			for k := range m {
				if a, ok := userSpecs[strings.ToLower(k)]; ok {
					touched[a.name] = true
				}
			}
		}
		for _, attr := range []string{"userName", "active"} {
			if !touched[attr] {
				continue
			}
			if op.op == "remove" {
				return badRequest("Operations[%d]: %s cannot be removed", i, attr)
			}
			seen[attr]++
			if seen[attr] > 1 {
				return badRequest("%s may appear in only one operation of a request", attr)
			}
		}
		if touched["groups"] {
			return badRequest("Operations[%d]: groups is read-only", i)
		}
	}
	return nil
}

// applyUserPatch applies ops to a copy of d and validates the result like a create.
func applyUserPatch(d *userDoc, ops []patchOp) (userDoc, error) {
	m := toMap(d)
	for i, op := range ops {
		var err error
		if op.path == "" {
			err = mergeInto(m, op.value.(map[string]any), userSpecs, op.op)
		} else {
			err = applyPath(m, op)
		}
		if err != nil {
			if ae, ok := err.(*apiError); ok {
				ae.detail = fmt.Sprintf("Operations[%d]: %s", i, ae.detail)
			}
			return userDoc{}, err
		}
	}
	n, err := normalizeObject(m, userSpecs, "")
	if err != nil {
		return userDoc{}, err
	}
	n["schemas"] = []any{userSchemaURN}
	return userFromMap(n)
}

// mergeInto applies a path-less add/replace: each attribute of value is set; objects merge.
func mergeInto(m, value map[string]any, sp specs, op string) error {
	for k, v := range value {
		a, ok := sp[strings.ToLower(k)]
		if !ok {
			// Extension attributes may also be given as "urn:...:User:department".
			if strings.HasPrefix(strings.ToLower(k), strings.ToLower(enterpriseSchemaURN)+":") {
				if err := applyPath(m, patchOp{op: op, path: k, value: v, hasValue: true}); err != nil {
					return err
				}
				continue
			}
			return badRequest("unknown attribute %q", k)
		}
		if a.rejected != "" {
			return badRequest("attribute %q is not supported: %s", a.name, a.rejected)
		}
		if a.kind == kComplex && !a.multi {
			sub, ok := v.(map[string]any)
			if !ok {
				return badRequest("attribute %q must be an object, got %s", a.name, jsonKind(v))
			}
			cur, _ := m[a.name].(map[string]any)
			if cur == nil {
				cur = map[string]any{}
			}
			if err := mergeInto(cur, sub, a.sub, op); err != nil {
				return err
			}
			m[a.name] = cur
			continue
		}
		if v == nil {
			delete(m, a.name)
			continue
		}
		m[a.name] = v
	}
	return nil
}

// applyPath applies one operation with a path to the user map m.
func applyPath(m map[string]any, op patchOp) error {
	path, err := parsePatchPath(op.path)
	if err != nil {
		return err
	}
	container, sp := m, userSpecs
	switch uri := path.AttributePath.URI(); {
	case uri == "" || strings.EqualFold(uri, userSchemaURN):
	case strings.EqualFold(uri, enterpriseSchemaURN):
		ext, _ := m[enterpriseSchemaURN].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			m[enterpriseSchemaURN] = ext
		}
		container, sp = ext, userSpecs[strings.ToLower(enterpriseSchemaURN)].sub
	default:
		return badRequest("unknown schema %q in path", uri)
	}
	a, ok := sp[strings.ToLower(path.AttributePath.AttributeName)]
	if !ok {
		return badRequest("unknown attribute %q", op.path)
	}
	if a.rejected != "" {
		return badRequest("attribute %q is not supported: %s", op.path, a.rejected)
	}
	sub := path.AttributePath.SubAttributeName()
	if sub == "" {
		sub = path.SubAttributeName()
	}
	var subSpec *attrSpec
	if sub != "" {
		if a.sub == nil {
			return badRequest("attribute %q has no sub-attribute %q", a.name, sub)
		}
		if subSpec, ok = a.sub[strings.ToLower(sub)]; !ok {
			return badRequest("unknown attribute %q", op.path)
		}
		if subSpec.rejected != "" {
			return badRequest("attribute %q is not supported: %s", op.path, subSpec.rejected)
		}
		sub = subSpec.name
	}
	// An extension manager given as a bare id: treat as manager.value.
	if a.name == "manager" && sub == "" {
		if s, ok := op.value.(string); ok {
			op.value = map[string]any{"value": s}
		}
	}
	if path.ValueExpression != nil && !a.multi {
		return badRequest("a value filter needs a multi-valued attribute: %q", op.path)
	}
	if a.multi {
		return applyMulti(container, a, path.ValueExpression, sub, op)
	}
	switch {
	case sub == "" && op.op == "remove":
		delete(container, a.name)
	case sub == "" && a.kind == kComplex:
		v, ok := op.value.(map[string]any)
		if !ok {
			return badRequest("attribute %q must be an object, got %s", a.name, jsonKind(op.value))
		}
		cur, _ := container[a.name].(map[string]any)
		if cur == nil || op.op == "replace" && a.name == "manager" {
			cur = map[string]any{}
		}
		if err := mergeInto(cur, v, a.sub, op.op); err != nil {
			return err
		}
		container[a.name] = cur
	case sub == "":
		container[a.name] = op.value
	default:
		cur, _ := container[a.name].(map[string]any)
		if op.op == "remove" {
			if cur != nil {
				delete(cur, sub)
				if len(cur) == 0 {
					delete(container, a.name)
				}
			}
			return nil
		}
		if cur == nil {
			cur = map[string]any{}
			container[a.name] = cur
		}
		cur[sub] = op.value
	}
	return nil
}

// applyMulti applies an operation to a multi-valued attribute, optionally narrowed by a value
// filter (emails[type eq "work"]) and a sub-attribute (.value).
func applyMulti(container map[string]any, a *attrSpec, expr filter.Expression, sub string, op patchOp) error {
	var conds map[string]any
	if expr != nil {
		var err error
		if conds, err = eqConditions(expr, a.sub); err != nil {
			return err
		}
	}
	cur, _ := container[a.name].([]any)
	if expr == nil && sub == "" {
		switch op.op {
		case "remove":
			delete(container, a.name)
		case "replace":
			container[a.name] = asList(op.value)
		case "add":
			container[a.name] = append(cur, asList(op.value)...)
		}
		return nil
	}
	matched := false
	var kept []any
	for _, el := range cur {
		obj, ok := el.(map[string]any)
		if !ok || !matches(obj, conds) {
			kept = append(kept, el)
			continue
		}
		matched = true
		switch {
		case op.op == "remove" && sub == "":
			continue // drop the element
		case op.op == "remove":
			delete(obj, sub)
		case sub != "":
			obj[sub] = op.value
		default:
			v, ok := op.value.(map[string]any)
			if !ok {
				return badRequest("attribute %q must be an object, got %s", a.name, jsonKind(op.value))
			}
			for k, x := range v {
				obj[k] = x
			}
		}
		kept = append(kept, obj)
	}
	if !matched && op.op != "remove" {
		obj := map[string]any{}
		for k, v := range conds {
			obj[k] = v
		}
		if sub != "" {
			obj[sub] = op.value
		} else if v, ok := op.value.(map[string]any); ok {
			for k, x := range v {
				obj[k] = x
			}
		} else {
			return badRequest("attribute %q must be an object, got %s", a.name, jsonKind(op.value))
		}
		// The only email is the primary one.
		if _, ok := obj["primary"]; !ok && a.name == "emails" {
			obj["primary"] = true
		}
		kept = append(kept, obj)
	}
	if len(kept) == 0 {
		delete(container, a.name)
	} else {
		container[a.name] = kept
	}
	return nil
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func matches(obj map[string]any, conds map[string]any) bool {
	for k, want := range conds {
		got, ok := obj[k]
		if !ok {
			return false
		}
		gs, gok := got.(string)
		ws, wok := want.(string)
		switch {
		case gok && wok:
			if !strings.EqualFold(gs, ws) {
				return false
			}
		case got != want:
			return false
		}
	}
	return true
}

// eqConditions flattens a value filter made of eq comparisons joined by and.
func eqConditions(expr filter.Expression, sp specs) (map[string]any, error) {
	out := map[string]any{}
	var walk func(filter.Expression) error
	walk = func(x filter.Expression) error {
		switch t := x.(type) {
		case *filter.LogicalExpression:
			if t.Operator != filter.AND {
				return badRequest("only eq and and are supported in value filters")
			}
			if err := walk(t.Left); err != nil {
				return err
			}
			return walk(t.Right)
		case *filter.AttributeExpression:
			if t.Operator != filter.EQ {
				return badRequest("only eq is supported in value filters, got %s", t.Operator)
			}
			a, ok := sp[strings.ToLower(t.AttributePath.AttributeName)]
			if !ok || t.AttributePath.SubAttribute != nil {
				return badRequest("unknown attribute %q in value filter", t.AttributePath.String())
			}
			switch v := t.CompareValue.(type) {
			case string, bool:
				out[a.name] = v
			default:
				return badRequest("value filter on %q must compare with a string", a.name)
			}
			return nil
		}
		return badRequest("unsupported value filter")
	}
	return out, walk(expr)
}
