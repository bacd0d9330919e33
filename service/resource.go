package service

import "github.com/gatehouse/gatehouse"

// Resource indicators (RFC 8707, SPEC §10.4) on the token endpoint.

func invalidTarget() error {
	return gatehouse.Errorf(gatehouse.EInvalidTarget, "resource must be an absolute http or https URI without a query or fragment, and the one the grant was given for")
}

// resourceParam returns the key (gatehouse.ResourceKey) of a token
// request's resource parameter, "" when absent, or invalid_target.
func resourceParam(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	key, ok := gatehouse.ResourceKey(v)
	if !ok {
		return "", invalidTarget()
	}
	return key, nil
}

// BindResource returns the resource new tokens are bound to, given the
// resource of what they come from (an authorization code or a refresh
// token; "" for none) and the one the token request asks for ("" for
// none): a bound grant keeps its resource, and a request for another is
// invalid_target; an unbound grant takes the request's (binding only
// narrows where a token works); neither leaves the tokens unbound, and
// they work as before resource indicators.
func BindResource(granted, asked string) (string, error) {
	switch {
	case granted == "":
		return asked, nil
	case asked == "" || asked == granted:
		return granted, nil
	}
	return "", invalidTarget()
}
