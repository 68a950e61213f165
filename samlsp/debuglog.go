package samlsp

import (
	"context"
	"errors"
	"log/slog"

	"github.com/beevik/etree"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// redactedElements are the elements whose text identifies a person or is
// key material: the debug log shows that they are there, not what they say.
var redactedElements = map[string]bool{
	"NameID": true, "AttributeValue": true, "SessionIndex": true,
	"SignatureValue": true, "DigestValue": true, "X509Certificate": true,
	"CipherValue": true, "Modulus": true, "Exponent": true,
}

// redactedXML returns doc with the text of redactedElements replaced and
// comments dropped: what an operator needs to see why a login fails
// (issuer, audience, destination, conditions, claim names, which parts
// are signed or encrypted) without the user's identity or any secret.
func redactedXML(doc []byte) (string, error) {
	d := etree.NewDocument()
	d.ReadSettings.Permissive = false
	if err := d.ReadFromBytes(doc); err != nil {
		return "", err
	}
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		kept := el.Child[:0]
		for _, tok := range el.Child {
			switch t := tok.(type) {
			case *etree.Comment, *etree.Directive, *etree.ProcInst:
				continue
			case *etree.CharData:
				if redactedElements[el.Tag] && !t.IsWhitespace() {
					t.Data = "[redacted]"
				}
			case *etree.Element:
				walk(t)
			}
			kept = append(kept, tok)
		}
		el.Child = kept
	}
	root := d.Root()
	if root == nil {
		return "", errors.New("no root element")
	}
	walk(root)
	d.Child = []etree.Token{root}
	return d.WriteToString()
}

// debugResponse logs the tenant's SAML response, redacted, when the
// operator asked for it (log.debug_assertion_tenant).
func (p *Provider) debugResponse(ctx context.Context, t *Tenant, doc []byte) {
	if p.currentSettings().debugTenant != t.ID {
		return
	}
	attrs := []slog.Attr{slog.String("tenant", t.ID), slog.String("correlation_id", reqinfo.CorrelationID(ctx))}
	if xml, err := redactedXML(doc); err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	} else {
		attrs = append(attrs, slog.String("response", xml))
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "SAML response (redacted, log.debug_assertion_tenant)", attrs...)
}
