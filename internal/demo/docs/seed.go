package docs

import (
	"fmt"
	"os"
)

// sampleDocuments returns the documents an empty Dir is seeded with. It is a
// function rather than a package variable so nothing can mutate it.
func sampleDocuments() []struct{ name, body string } {
	return []struct{ name, body string }{
		{"Engagement Letter.txt", `ENGAGEMENT LETTER

Client:  Acme Holdings Ltd.
Matter:  2024-117, Supply Agreement Dispute

This letter confirms the terms on which the firm will act for you.
It is demo content served by the sso-gateway demo document service.
`},
		{"Q3 Board Minutes.md", `# Q3 Board Minutes

*Demo content for the sso-gateway demo document service.*

## Attendees
- Chair
- CFO
- General Counsel

## Resolutions
1. Approve the Q3 accounts.
2. Renew the document-management contract.
`},
		{"Matter 2024-117 Brief.txt", `BRIEF TO COUNSEL: MATTER 2024-117

Summary of facts, issues and the relief sought.
Demo content: nothing here is real.
`},
	}
}

// seed writes the sample documents if Dir is empty, so a fresh demo has
// something to list and download. A non-empty Dir is left alone: it may hold
// real uploads from an earlier run.
func (s *Service) seed() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("docs: read document dir: %w", err)
	}
	if len(entries) > 0 {
		return nil
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range sampleDocuments() {
		if err := root.WriteFile(d.name, []byte(d.body), 0o644); err != nil {
			return fmt.Errorf("docs: seed %q: %w", d.name, err)
		}
	}
	s.log.Info("docs: seeded sample documents", "dir", s.dir, "count", len(sampleDocuments()))
	return nil
}
