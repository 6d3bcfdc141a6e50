package transforms

import (
	"fmt"
	"strconv"
)

// EventName returns the fully qualified name of a custom behavioral event,
// pe{hubID}_{name}, where name is the track event's name normalized with
// [NormalizeKeyMax] to [MaxEventNameLen] characters: "Order Completed" in
// portal 1234567 becomes pe1234567_order_completed. The 50-character limit
// applies to the name HubSpot's event definitions hold, without the prefix.
// An event name that cannot be normalized (no letters, or not starting with
// a letter) or a hub id that is not positive is an error.
func EventName(hubID int64, event string) (string, error) {
	if hubID <= 0 {
		return "", fmt.Errorf("hub id %d is not a HubSpot portal id", hubID)
	}
	name, ok := NormalizeKeyMax(event, MaxEventNameLen)
	if !ok {
		if name == "" {
			return "", fmt.Errorf("event name %s cannot be a custom event name: it has no letters or digits", quote(event))
		}
		return "", fmt.Errorf("event name %s cannot be a custom event name: it normalizes to %q, which does not start with a letter", quote(event), name)
	}
	return "pe" + strconv.FormatInt(hubID, 10) + "_" + name, nil
}
