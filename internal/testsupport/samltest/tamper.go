package samltest

// Tampering with signed messages, for tests of the attacks on XML signature
// in SAML: signature wrapping (XSW), comments and CDATA sections that split
// a signed value, signatures that reference the wrong element, and
// compression bombs in the HTTP-Redirect binding.
//
// Signing here is goxmldsig's, as in response.go: Resign makes a fresh
// enveloped signature with its SigningContext, and ResignSignedInfo signs a
// SignedInfo a test has edited with the same context's canonicalizer and
// SignString. Nothing here computes a digest or a signature itself.

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// ParseXML parses a message as crewjam reads it: strictly, so that a test
// sees the document the service provider sees. CDATA sections are kept as
// such, so that writing the document again does not merge them into text.
// It fails tb if xml is not well-formed.
func ParseXML(tb testing.TB, xml []byte) *etree.Document {
	tb.Helper()
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveCData = true
	if err := doc.ReadFromBytes(xml); err != nil {
		tb.Fatalf("samltest: parse XML: %v", err)
	}
	if doc.Root() == nil {
		tb.Fatal("samltest: parse XML: no root element")
	}
	return doc
}

// XMLBytes serializes doc as etree writes it, without indentation (which
// would change signed text).
func XMLBytes(tb testing.TB, doc *etree.Document) []byte {
	tb.Helper()
	buf, err := doc.WriteToBytes()
	if err != nil {
		tb.Fatalf("samltest: write XML: %v", err)
	}
	return buf
}

// Find returns the element reached from el by following, for each of path,
// the first child element with that local name, whatever its namespace
// prefix; or nil if there is none. Find(el) is el.
func Find(el *etree.Element, path ...string) *etree.Element {
	for _, tag := range path {
		if el == nil {
			return nil
		}
		var next *etree.Element
		for _, child := range el.ChildElements() {
			if child.Tag == tag {
				next = child
				break
			}
		}
		el = next
	}
	return el
}

// MustFind is Find, failing tb if there is no such element.
func MustFind(tb testing.TB, el *etree.Element, path ...string) *etree.Element {
	tb.Helper()
	found := Find(el, path...)
	if found == nil {
		tb.Fatalf("samltest: no %v under <%s>", path, el.FullTag())
	}
	return found
}

// Unsign removes el's enveloped signature (its Signature child) and
// returns it, or nil if el has none.
func Unsign(el *etree.Element) *etree.Element {
	sig := Find(el, "Signature")
	if sig != nil {
		el.RemoveChild(sig)
	}
	return sig
}

// InsertAfterIssuer inserts t into el just after el's Issuer child, where
// the schema puts a Response's or an Assertion's Signature, or as el's
// first child if it has no Issuer.
func InsertAfterIssuer(el *etree.Element, t etree.Token) {
	at := 0
	if issuer := Find(el, "Issuer"); issuer != nil {
		at = issuer.Index() + 1
	}
	el.InsertChildAt(at, t)
}

// Encrypt returns an EncryptedAssertion holding a copy of el, an Assertion
// as a test has made or changed it (signed or not), encrypted as e says,
// the way Response.Encrypt encrypts the assertion it makes. It fails tb if
// el cannot be encrypted (e.Cert is nil, or its key is not RSA).
func Encrypt(tb testing.TB, el *etree.Element, e Encryption) *etree.Element {
	tb.Helper()
	// el may sit inside a document: the copy declares the namespaces it
	// inherits, as it must once it stands alone in the plaintext.
	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		tb.Fatalf("samltest: encrypt: %v", err)
	}
	detached, err := etreeutils.NSDetatch(nsCtx, el)
	if err != nil {
		tb.Fatalf("samltest: encrypt: %v", err)
	}
	encrypted, err := e.encrypt(detached)
	if err != nil {
		tb.Fatalf("samltest: encrypt: %v", err)
	}
	return encrypted
}

// SplitTextWithComment replaces the text of el, an element without child
// elements, by its first at bytes, a comment holding comment, and the rest.
// Exclusive canonicalization without comments, which signatures in SAML
// use, leaves the comment out, so a signature over el still verifies; a
// parser that stops reading at the comment sees only the first part.
func SplitTextWithComment(tb testing.TB, el *etree.Element, at int, comment string) {
	tb.Helper()
	before, after := splitText(tb, el, at)
	el.CreateText(before)
	el.CreateComment(comment)
	el.CreateText(after)
}

// SplitTextWithCDATA replaces the text of el, an element without child
// elements, by its first at bytes followed by a CDATA section holding the
// rest. It means the same text, and canonicalizes the same.
func SplitTextWithCDATA(tb testing.TB, el *etree.Element, at int) {
	tb.Helper()
	before, after := splitText(tb, el, at)
	el.CreateText(before)
	el.CreateCData(after)
}

// splitText removes el's character data and returns it split at at.
func splitText(tb testing.TB, el *etree.Element, at int) (string, string) {
	tb.Helper()
	if len(el.ChildElements()) > 0 {
		tb.Fatalf("samltest: <%s> has child elements", el.FullTag())
	}
	text := el.Text()
	if at < 0 || at > len(text) {
		tb.Fatalf("samltest: cannot split %q at %d", text, at)
	}
	for len(el.Child) > 0 {
		el.RemoveChildAt(0)
	}
	return text[:at], text[at:]
}

// Signer says how Resign signs. Its zero value signs as IdP.SignedResponse
// does by default: with the IdP's Key and Cert, RSA-SHA256, exclusive
// canonicalization, and the certificate in KeyInfo.
type Signer struct {
	// Key and Cert sign instead of the IdP's, for example a pair nobody
	// trusts.
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// SignatureMethod is the signature algorithm;
	// dsig.RSASHA256SignatureMethod if empty.
	SignatureMethod string
	// IDAttribute names the attribute the Reference URI is made from: "#"
	// and its value. If empty, it is "ID". If el has no such attribute,
	// the URI is "" (the whole document), which goxmldsig accepts but the
	// SAML signature profile forbids.
	IDAttribute string
}

// Resign signs el again, as the IdP would have signed it as it is now: it
// removes el's Signature, makes an enveloped signature of the rest, and
// inserts it after el's Issuer. el may sit inside a document: the namespace
// declarations in scope at el are taken into account, as a verifier does.
// It fails tb if el cannot be signed.
func (idp *IDP) Resign(tb testing.TB, el *etree.Element, s Signer) {
	tb.Helper()
	Unsign(el)
	ctx, err := idp.signingContext(s.Key, s.Cert, s.SignatureMethod)
	if err != nil {
		tb.Fatalf("samltest: resign: %v", err)
	}
	if s.IDAttribute != "" {
		ctx.IdAttribute = s.IDAttribute
	}
	// Sign a detached copy that declares the namespaces el inherits, as the
	// verifier canonicalizes el in its context.
	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		tb.Fatalf("samltest: resign: %v", err)
	}
	detached, err := etreeutils.NSDetatch(nsCtx, el)
	if err != nil {
		tb.Fatalf("samltest: resign: %v", err)
	}
	// Canonical XML replaces a CDATA section by its text, as a verifier's
	// parser already has; goxmldsig would write the section as it is.
	cdataAsText(detached)
	sig, err := ctx.ConstructSignature(detached, true)
	if err != nil {
		tb.Fatalf("samltest: resign: %v", err)
	}
	InsertAfterIssuer(el, sig)
}

// cdataAsText replaces every CDATA section under el by the same text.
func cdataAsText(el *etree.Element) {
	for i, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			if t.IsCData() {
				el.RemoveChildAt(i)
				el.InsertChildAt(i, etree.NewText(t.Data))
			}
		case *etree.Element:
			cdataAsText(t)
		}
	}
}

// ResignSignedInfo makes the SignatureValue of sig, a Signature, a valid
// signature by the IdP's Key over sig's SignedInfo as it is now, after a
// test has edited it (a Reference URI, a second Reference). The digests in
// the SignedInfo are left as they are. sig must use exclusive
// canonicalization, as Resign and IdP.SignedResponse do.
func (idp *IDP) ResignSignedInfo(tb testing.TB, sig *etree.Element) {
	tb.Helper()
	signedInfo := MustFind(tb, sig, "SignedInfo")
	method := MustFind(tb, signedInfo, "SignatureMethod").SelectAttrValue("Algorithm", "")
	c14n := MustFind(tb, signedInfo, "CanonicalizationMethod").SelectAttrValue("Algorithm", "")
	if c14n != string(dsig.CanonicalXML10ExclusiveAlgorithmId) {
		tb.Fatalf("samltest: resign SignedInfo: canonicalization %q is not exclusive", c14n)
	}
	ctx, err := idp.signingContext(nil, nil, method)
	if err != nil {
		tb.Fatalf("samltest: resign SignedInfo: %v", err)
	}
	nsCtx, err := etreeutils.NSBuildParentContext(signedInfo)
	if err != nil {
		tb.Fatalf("samltest: resign SignedInfo: %v", err)
	}
	detached, err := etreeutils.NSDetatch(nsCtx, signedInfo)
	if err != nil {
		tb.Fatalf("samltest: resign SignedInfo: %v", err)
	}
	canonical, err := ctx.Canonicalizer.Canonicalize(detached)
	if err != nil {
		tb.Fatalf("samltest: resign SignedInfo: %v", err)
	}
	value, err := ctx.SignString(string(canonical))
	if err != nil {
		tb.Fatalf("samltest: resign SignedInfo: %v", err)
	}
	MustFind(tb, sig, "SignatureValue").SetText(base64.StdEncoding.EncodeToString(value))
}

// signingContext is the goxmldsig context Response.sign uses, with key and
// cert (the IdP's if nil) and method (RSA-SHA256 if empty).
func (idp *IDP) signingContext(key *rsa.PrivateKey, cert *x509.Certificate, method string) (*dsig.SigningContext, error) {
	if key == nil {
		key = idp.Key
	}
	if cert == nil {
		cert = idp.Cert
	}
	if key == nil || cert == nil {
		return nil, errors.New("no signing key or certificate")
	}
	if method == "" {
		method = dsig.RSASHA256SignatureMethod
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Prefix = ""
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		return nil, err
	}
	return ctx, nil
}

// DeflateBomb returns raw DEFLATE data (RFC 1951, as the HTTP-Redirect
// binding carries it) that inflates to prefix followed by its last byte
// repeated until the output is at least size bytes long; prefix must not be
// empty. It is built by hand rather than compressed, so a bomb of a
// gigabyte costs a megabyte and no time: prefix goes into a stored block,
// then one dynamic Huffman block repeats "copy 258 bytes from distance 1"
// at two bits a time, DEFLATE's best ratio of about 1032 to 1.
func DeflateBomb(prefix []byte, size int64) []byte {
	if len(prefix) == 0 || len(prefix) > 0xffff {
		panic("samltest: DeflateBomb prefix must be 1 to 65535 bytes")
	}
	var out bytes.Buffer
	// Stored block, not final: BFINAL=0, BTYPE=00, then LEN and NLEN at the
	// next byte boundary.
	out.WriteByte(0)
	var lens [4]byte
	binary.LittleEndian.PutUint16(lens[0:], uint16(len(prefix)))
	binary.LittleEndian.PutUint16(lens[2:], ^uint16(len(prefix)))
	out.Write(lens[:])
	out.Write(prefix)

	w := bitWriter{out: &out}
	w.bits(1, 1)  // BFINAL
	w.bits(2, 2)  // BTYPE: dynamic Huffman codes
	w.bits(29, 5) // HLIT: 257+29 = 286 literal/length codes (0-285)
	w.bits(0, 5)  // HDIST: 1 distance code
	w.bits(14, 4) // HCLEN: 4+14 = 18 code length code lengths
	// Code length code lengths, in RFC 1951's order 16, 17, 18, 0, 8, 7, 9,
	// 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1: symbol 18 (a run of zeros) has
	// length 1, symbols 1 and 2 have length 2.
	for _, l := range []uint32{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2} {
		w.bits(l, 3)
	}
	// The code lengths of the 286 literal/length codes and the distance
	// code, in the canonical codes of the code length alphabet: 18 is 0, 1
	// is 10, 2 is 11. Literal 0 and 256 (end of block) get length 2, 285
	// (length 258) and distance code 0 (distance 1) length 1, every other
	// code length 0.
	zeros := func(n uint32) { // a run of 11 to 138 zeros
		w.code(0b0, 1)
		w.bits(n-11, 7)
	}
	w.code(0b11, 2) // literal 0
	zeros(138)      // literals 1-138
	zeros(117)      // literals 139-255
	w.code(0b11, 2) // 256
	zeros(28)       // 257-284
	w.code(0b10, 2) // 285
	w.code(0b10, 2) // distance code 0
	// Literal/length codes: 285 is 0, literal 0 is 10, 256 is 11. The
	// distance code is 0.
	for n := int64(len(prefix)); n < size; n += 258 {
		w.code(0b0, 1) // length 258
		w.code(0b0, 1) // distance 1
	}
	w.code(0b11, 2) // end of block
	w.flush()
	return out.Bytes()
}

// bitWriter writes DEFLATE's bit stream: fields least significant bit
// first, Huffman codes most significant bit first.
type bitWriter struct {
	out   *bytes.Buffer
	acc   uint64
	nbits uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.out.WriteByte(byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) code(c uint32, n uint) {
	var rev uint32
	for i := uint(0); i < n; i++ {
		rev = rev<<1 | (c>>i)&1
	}
	w.bits(rev, n)
}

func (w *bitWriter) flush() {
	if w.nbits > 0 {
		w.out.WriteByte(byte(w.acc))
		w.acc, w.nbits = 0, 0
	}
}
