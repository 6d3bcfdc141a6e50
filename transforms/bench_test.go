package transforms

import (
	"testing"

	"github.com/tidwall/gjson"
)

// identifyTraits is a realistic identify: 20 traits, Segment spec names,
// nested address and company, an Engage computed trait and audience.
const identifyTraits = `{
	"email": "jane.doe@example.com",
	"firstName": "Jane",
	"lastName": "Doe",
	"title": "VP Engineering",
	"phone": "+44 20 7946 0000",
	"company": {"name": "Acme Ltd", "plan": "enterprise"},
	"address": {"street": "1 Main St", "city": "London", "postalCode": "EC1A 1BB", "country": "GB"},
	"lifecycle_stage": "customer",
	"website": "https://acme.example.com",
	"createdAt": "2024-05-01T09:30:00+01:00",
	"last_login": 1700000000000,
	"date_of_birth": "1990-05-17",
	"newsletter": true,
	"interests": ["sports", "music"],
	"lifetime_value": 1234.5,
	"high_value_users": true,
	"seats": "12"
}`

func BenchmarkContactProperties(b *testing.B) {
	cat := mustCatalog(b, contactCatalog)
	traits := gjson.Parse(identifyTraits)
	if n := len(ContactProperties(traits, cat, Options{}).Properties); n < 15 {
		b.Fatalf("only %d properties mapped", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		ContactProperties(traits, cat, Options{})
	}
}

func BenchmarkEventProperties(b *testing.B) {
	props := gjson.Parse(`{"order_id":"o-1","revenue":99.9,"currency":"EUR","products":["sku-1","sku-2"],"coupon":"SPRING","Shipping Method":"express","placed_at":"2026-03-01T23:30:00-05:00"}`)
	b.ReportAllocs()
	for b.Loop() {
		EventProperties(props, Options{})
	}
}

func BenchmarkDomain(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Domain("https://www.Shop.Example.co.uk:8080/path?q=1", true); err != nil {
			b.Fatal(err)
		}
	}
}
