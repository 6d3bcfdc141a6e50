// Package transforms turns Segment calls into HubSpot property values. It
// holds pure functions over gjson values: no I/O, no package-level state, safe
// for concurrent use.
//
// The pieces, in the order a destination uses them:
//
//   - [NormalizeKey] and [NormalizeKeyMax] turn trait and property keys into
//     HubSpot property names.
//   - [ParseCatalog] reads a portal's property list; [Catalog] maps names to
//     their [Property] types.
//   - [FormatValue] and the per-type formatters ([FormatDate],
//     [FormatDateTime], [FormatBool], [FormatNumber]) render one value as the
//     string HubSpot expects for a property's type; [InferProperty] guesses a
//     type for a property the catalogue lacks.
//   - [ContactProperties], [CompanyProperties] and [EventProperties] map a
//     whole traits or properties object: renames, flattening, collisions,
//     unknown properties and per-key problems, in a [Result].
//   - [Domain] reduces a website to the company domain; [EventName] builds a
//     custom behavioral event's fully qualified name.
package transforms
