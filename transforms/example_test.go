package transforms_test

import (
	"fmt"
	"sort"

	"github.com/switchyard/switchyard/transforms"
	"github.com/tidwall/gjson"
)

func ExampleContactProperties() {
	cat, err := transforms.ParseCatalog([]byte(`{"results":[
		{"name":"email","type":"string","fieldType":"text"},
		{"name":"firstname","type":"string","fieldType":"text"},
		{"name":"city","type":"string","fieldType":"text"},
		{"name":"plan_type","type":"string","fieldType":"text"},
		{"name":"last_login","type":"datetime","fieldType":"date"}]}`))
	if err != nil {
		panic(err)
	}
	traits := gjson.Parse(`{"email":"jane@example.com","firstName":"Jane","address":{"city":"Paris"},
		"Plan Type":"pro","plan_type":"team","last_login":1700000000,"high_value_users":true}`)

	r := transforms.ContactProperties(traits, cat, transforms.Options{})

	names := make([]string, 0, len(r.Properties))
	for name := range r.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("%s=%s\n", name, r.Properties[name])
	}
	for _, u := range r.Unknown {
		fmt.Printf("unknown %s (%s/%s)=%s\n", u.Property.Name, u.Property.Type, u.Property.FieldType, u.Value)
	}
	for _, p := range r.Problems {
		fmt.Printf("%s: %s\n", p.Kind, p)
	}
	// Output:
	// city=Paris
	// email=jane@example.com
	// firstname=Jane
	// last_login=2023-11-14T22:13:20.000Z
	// plan_type=team
	// unknown high_value_users (bool/booleancheckbox)=true
	// collision: Plan Type: "Plan Type" and "plan_type" both become plan_type; kept "plan_type"
}

func ExampleDomain() {
	for _, website := range []string{"https://www.bücher.de/x", "http://Shop.Example.co.uk:8080/path?q=1"} {
		full, _ := transforms.Domain(website, false)
		registrable, _ := transforms.Domain(website, true)
		fmt.Println(full, registrable)
	}
	// Output:
	// xn--bcher-kva.de xn--bcher-kva.de
	// shop.example.co.uk example.co.uk
}

func ExampleEventName() {
	name, err := transforms.EventName(1234567, "Order Completed")
	fmt.Println(name, err)
	// Output: pe1234567_order_completed <nil>
}
