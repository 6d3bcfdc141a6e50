#!/usr/bin/env python3
"""check.py calls a HubSpot sandbox through HubSpot's official Python clients
and checks every answer against the clients' generated models.

Usage: check.py BASE_URL

Each endpoint the sandbox serves is called through the client's own API class
(hubspot-api-client for the CRM, associations, lists and event send APIs;
hubspot-sdk for the custom event definitions, which hubspot-api-client does
not cover), so the client deserializes the answer. Then the raw JSON of the
answer is checked strictly against the model the client chose: every object
carries every attribute the model requires, no key the model does not
declare, and every value has the model's type. Error answers are checked
against the client's Error model the same way.

It prints one line per mismatch ("MISMATCH <endpoint>: <json path>: <what>"),
one line per endpoint checked, and a closing count; it exits 1 on any
mismatch and 2 on bad usage.
"""

import datetime
import inspect
import json
import re
import sys
import typing
import uuid

import hubspot
import hubspot_sdk
import pydantic
from hubspot.crm.associations.v4 import models as assoc_models
from hubspot.crm.companies import models as company_models
from hubspot.crm.contacts import models as contact_models
from hubspot.crm.deals import models as deal_models
from hubspot.crm.lists import models as list_models
from hubspot.crm.objects import models as object_models
from hubspot.crm.properties import models as property_models
from hubspot.events.send import models as send_models
from hubspot_sdk.types.events import ExternalBehavioralEventTypeDefinition
from hubspot_sdk.types.shared import Property as SDKProperty

TOKEN = "pat-na1-schemas"

mismatches = []
checked = []

# Keys HubSpot documents in its answers that a model leaves out, with the
# source. They are allowed, and listed in the output.
DOCUMENTED_EXTRAS = {
    ("Error", "status"): 'HubSpot\'s error-handling guide shows "status":"error" in every error body; '
                         "the Error model of hubspot-api-client 12.0.0 omits it",
}
allowed = set()


def mismatch(endpoint, path, what):
    """Notes one mismatch; the same one at several indexes of a list is
    noted once, with the index as []."""
    path = re.sub(r"\[\d+\]", "[]", path) or "$"
    line = f"MISMATCH {endpoint}: {path}: {what}"
    if line not in mismatches:
        mismatches.append(line)


# --- hubspot-api-client models (openapi-generator: openapi_types, attribute_map)

_required_cache = {}


def required_attributes(cls):
    """The attributes whose setter refuses None: those the model requires."""
    if cls not in _required_cache:
        src = inspect.getsource(cls)
        _required_cache[cls] = set(re.findall(r"Invalid value for `(\w+)`, must not be `None`", src))
    return _required_cache[cls]


def is_datetime(v):
    if not isinstance(v, str):
        return False
    try:
        datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in v


PRIMITIVES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": is_datetime,
    "date": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None,
}


def check_generated(endpoint, value, type_name, models, path=""):
    """Checks a JSON value against an openapi-generator type name."""
    if type_name == "object":
        return
    if value is None:
        mismatch(endpoint, path, f"null where the model has {type_name}")
        return
    m = re.fullmatch(r"list\[(.*)\]", type_name)
    if m:
        if not isinstance(value, list):
            mismatch(endpoint, path, f"{type(value).__name__} where the model has {type_name}")
            return
        for i, item in enumerate(value):
            check_generated(endpoint, item, m.group(1), models, f"{path}[{i}]")
        return
    m = re.fullmatch(r"dict\(str, (.*)\)|dict\[str, (.*)\]", type_name)
    if m:
        if not isinstance(value, dict):
            mismatch(endpoint, path, f"{type(value).__name__} where the model has {type_name}")
            return
        inner = m.group(1) or m.group(2)
        for k, item in value.items():
            # HubSpot answers null for a property that has no value: the
            # spec's property maps are of nullable strings.
            if item is None and inner == "str":
                continue
            check_generated(endpoint, item, inner, models, f"{path}.{k}")
        return
    if type_name in PRIMITIVES:
        if not PRIMITIVES[type_name](value):
            mismatch(endpoint, path, f"{json.dumps(value)[:60]} is not a {type_name}")
        return
    cls = getattr(models, type_name)
    check_generated_model(endpoint, value, cls, models, path)


def check_generated_model(endpoint, value, cls, models, path=""):
    name = f"{cls.__module__.split('.models.')[0]}.{cls.__name__}"
    if not isinstance(value, dict):
        mismatch(endpoint, path, f"{type(value).__name__} where {name} is an object")
        return
    keys = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    required = required_attributes(cls)
    for key in value:
        if (cls.__name__, key) in DOCUMENTED_EXTRAS:
            allowed.add((cls.__name__, key))
        elif key not in keys:
            mismatch(endpoint, f"{path}.{key}", f"key not declared by {name}")
    for attr in sorted(required):
        if cls.attribute_map[attr] not in value:
            mismatch(endpoint, f"{path}.{cls.attribute_map[attr]}", f"required by {name}, missing")
    for key, item in value.items():
        if key not in keys:
            continue
        # The model's setter takes None for an attribute it does not
        # require (the generated code keeps no other nullability).
        if item is None and keys[key] not in required:
            continue
        check_generated(endpoint, item, cls.openapi_types[keys[key]], models, f"{path}.{key}")


# --- hubspot-sdk models (pydantic)


def check_pydantic(endpoint, value, ann, path=""):
    """Checks a JSON value against a pydantic annotation."""
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if ann is typing.Any or ann is object:
        return
    if origin is typing.Union:
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            check_pydantic(endpoint, value, options[0], path)
            return
        before = len(mismatches)
        for option in options:
            mark = len(mismatches)
            check_pydantic(endpoint, value, option, path)
            if len(mismatches) == mark:
                del mismatches[before:]
                return
        del mismatches[before:]
        mismatch(endpoint, path, f"{json.dumps(value)[:60]} matches none of {ann}")
        return
    if origin is typing.Literal:
        if value not in args:
            mismatch(endpoint, path, f"{json.dumps(value)} is not one of {list(args)}")
        return
    if value is None:
        mismatch(endpoint, path, f"null where the model has {ann}")
        return
    if origin in (list, typing.List):
        if not isinstance(value, list):
            mismatch(endpoint, path, f"{type(value).__name__} where the model has a list")
            return
        for i, item in enumerate(value):
            check_pydantic(endpoint, item, args[0], f"{path}[{i}]")
        return
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            mismatch(endpoint, path, f"{type(value).__name__} where the model has a map")
            return
        for k, item in value.items():
            check_pydantic(endpoint, item, args[1], f"{path}.{k}")
        return
    if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
        check_pydantic_model(endpoint, value, ann, path)
        return
    simple = {str: "str", bool: "bool", int: "int", float: "float", datetime.datetime: "datetime", datetime.date: "date"}
    if ann in simple:
        if not PRIMITIVES[simple[ann]](value):
            mismatch(endpoint, path, f"{json.dumps(value)[:60]} is not a {simple[ann]}")
        return
    raise TypeError(f"{endpoint}: {path}: cannot check annotation {ann}")


def check_pydantic_model(endpoint, value, cls, path=""):
    name = f"hubspot_sdk.{cls.__name__}"
    if not isinstance(value, dict):
        mismatch(endpoint, path, f"{type(value).__name__} where {name} is an object")
        return
    cls.model_rebuild()
    fields = {(f.alias or attr): f for attr, f in cls.model_fields.items()}
    for key in value:
        if key not in fields:
            mismatch(endpoint, f"{path}.{key}", f"key not declared by {name}")
    for key, f in sorted(fields.items()):
        if f.is_required() and key not in value:
            mismatch(endpoint, f"{path}.{key}", f"required by {name}, missing")
    for key, item in value.items():
        if key in fields:
            check_pydantic(endpoint, item, fields[key].annotation, f"{path}.{key}")


# --- calling through the clients

last = {}


def recording(api):
    """Wraps an API object's REST client so that the raw answer of each call
    is kept in last."""
    rest = api.api_client.rest_client
    inner = rest.request

    def request(*args, **kwargs):
        resp = inner(*args, **kwargs)
        last["status"], last["body"] = resp.status, resp.data
        return resp

    rest.request = request
    return api


def call(endpoint, fn, *args, models, status=None, **kwargs):
    """Calls fn through a hubspot-api-client API class, then checks the raw
    answer against the model the client deserialized it into. Returns the
    deserialized answer, or None if the call failed."""
    last.clear()
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # the client refused the answer or the call
        body = getattr(e, "body", None)
        mismatch(endpoint, "", f"client call failed: {type(e).__name__}: {str(e).strip()[:300]} {body[:300] if body else ''}")
        return None
    checked.append(endpoint)
    if status is not None and last["status"] != status:
        mismatch(endpoint, "", f"status {last['status']}, the API documents {status}")
    if result is None:
        if last["body"]:
            mismatch(endpoint, "", f"a body where the API answers none: {last['body'][:100]!r}")
        return None
    check_generated_model(endpoint, json.loads(last["body"]), type(result), models)
    return result


def call_error(endpoint, fn, *args, models, status, **kwargs):
    """Calls fn expecting an error answer with the given status, and checks
    its body against the package's Error model."""
    try:
        fn(*args, **kwargs)
    except Exception as e:
        if getattr(e, "status", None) != status:
            mismatch(endpoint, "", f"wanted an error {status}, got {type(e).__name__}: {str(e)[:200]}")
            return
        checked.append(endpoint)
        try:
            body = json.loads(e.body)
        except (TypeError, ValueError):
            mismatch(endpoint, "", f"error body is not JSON: {e.body!r:.100}")
            return
        check_generated_model(endpoint, body, models.Error, models)
        return
    mismatch(endpoint, "", f"wanted an error {status}, the call succeeded")


def main():
    if len(sys.argv) != 2:
        print("usage: check.py BASE_URL", file=sys.stderr)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    client = hubspot.Client.create(access_token=TOKEN, host=base)
    run = uuid.uuid4().hex[:8]
    crm = client.crm

    contacts_batch = recording(crm.contacts.batch_api)
    contacts_basic = recording(crm.contacts.basic_api)
    contacts_search = recording(crm.contacts.search_api)
    objects_batch = recording(crm.objects.batch_api)
    objects_basic = recording(crm.objects.basic_api)
    objects_search = recording(crm.objects.search_api)
    companies_basic = recording(crm.companies.basic_api)
    deals_batch = recording(crm.deals.batch_api)
    deals_basic = recording(crm.deals.basic_api)
    deals_search = recording(crm.deals.search_api)
    props = recording(crm.properties.core_api)
    groups = recording(crm.properties.groups_api)
    assoc_batch = recording(crm.associations.v4.batch_api)
    assoc_basic = recording(crm.associations.v4.basic_api)
    send_basic = recording(client.events.send.basic_api)
    send_batch = recording(client.events.send.batch_api)
    lists = recording(crm.lists.lists_api)
    members = recording(crm.lists.memberships_api)

    # Properties and groups: the unique property the upserts below use.
    group = f"schemas_{run}"
    call("POST /crm/v3/properties/{objectType}/groups", groups.create, "contacts",
         property_models.PropertyGroupCreate(name=group, label="Schemas"), models=property_models, status=201)
    call("GET /crm/v3/properties/{objectType}/groups", groups.get_all, "contacts", models=property_models, status=200)
    call("POST /crm/v3/properties/{objectType}", props.create, "companies",
         property_models.PropertyCreate(name=f"ext_id_{run}", label="External id", type="string", field_type="text",
                                        group_name="companyinformation", has_unique_value=True),
         models=property_models, status=201)
    call("POST /crm/v3/properties/{objectType}", props.create, "contacts",
         property_models.PropertyCreate(name=f"plan_{run}", label="Plan", type="enumeration", field_type="select",
                                        group_name=group,
                                        options=[property_models.OptionInput(label="Pro", value="pro", display_order=0, hidden=False)]),
         models=property_models, status=201)
    call("GET /crm/v3/properties/{objectType}", props.get_all, "contacts", models=property_models, status=200)
    call("GET /crm/v3/properties/{objectType}/{propertyName}", props.get_by_name, "contacts", "email",
         models=property_models, status=200)
    call_error("GET /crm/v3/properties/{objectType}/{propertyName} (unknown)", props.get_by_name, "contacts",
               f"nope_{run}", models=property_models, status=404)

    # Contacts: upsert by email, create, update, read, get, page, search.
    email = f"ada.{run}@example.com"
    up = call("POST /crm/v3/objects/contacts/batch/upsert", contacts_batch.upsert,
              contact_models.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
                  contact_models.SimplePublicObjectBatchInputUpsert(id=email, id_property="email",
                                                                    properties={"firstname": "Ada", "email": email})]),
              models=contact_models, status=200)
    created = call("POST /crm/v3/objects/contacts/batch/create", contacts_batch.create,
                   contact_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                       contact_models.SimplePublicObjectInputForCreate(properties={"email": f"grace.{run}@example.com"},
                                                                       associations=[])]),
                   models=contact_models, status=201)
    call_error("POST /crm/v3/objects/contacts/batch/create (existing email)", contacts_batch.create,
               contact_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                   contact_models.SimplePublicObjectInputForCreate(properties={"email": email}, associations=[])]),
               models=contact_models, status=409)
    contact_id = up.results[0].id if up else None
    if contact_id:
        call("POST /crm/v3/objects/contacts/batch/update", contacts_batch.update,
             contact_models.BatchInputSimplePublicObjectBatchInput(inputs=[
                 contact_models.SimplePublicObjectBatchInput(id=contact_id, properties={"lastname": "Lovelace"})]),
             models=contact_models, status=200)
        call("POST /crm/v3/objects/contacts/batch/read", contacts_batch.read,
             contact_models.BatchReadInputSimplePublicObjectId(inputs=[contact_models.SimplePublicObjectId(id=contact_id)],
                                                               properties=["email", "firstname", "nosuch"],
                                                               properties_with_history=["firstname"]),
             models=contact_models, status=200)
        call("POST /crm/v3/objects/contacts/batch/read (207, unknown id)", contacts_batch.read,
             contact_models.BatchReadInputSimplePublicObjectId(inputs=[contact_models.SimplePublicObjectId(id=contact_id),
                                                                       contact_models.SimplePublicObjectId(id="999999999")],
                                                               properties=["email"], properties_with_history=[]),
             models=contact_models, status=207)
        # hubspot-api-client 12.0.0's create input has no objectWriteTraceId;
        # an update that carries one reports a failing input in a 207.
        call("POST /crm/v3/objects/contacts/batch/update (207, unknown record)", contacts_batch.update,
             contact_models.BatchInputSimplePublicObjectBatchInput(inputs=[
                 contact_models.SimplePublicObjectBatchInput(id=contact_id, properties={"lastname": "L"},
                                                             object_write_trace_id="t1"),
                 contact_models.SimplePublicObjectBatchInput(id="999999999", properties={"lastname": "L"},
                                                             object_write_trace_id="t2")]),
             models=contact_models, status=207)
        call("GET /crm/v3/objects/contacts/{contactId}", contacts_basic.get_by_id, contact_id,
             properties=["email", "firstname"], properties_with_history=["firstname"], models=contact_models, status=200)
    call_error("GET /crm/v3/objects/contacts/{contactId} (unknown)", contacts_basic.get_by_id, "999999999",
               models=contact_models, status=404)
    call("GET /crm/v3/objects/contacts", contacts_basic.get_page, limit=1, properties=["email"],
         models=contact_models, status=200)
    call("POST /crm/v3/objects/contacts/search", contacts_search.do_search,
         contact_models.PublicObjectSearchRequest(
             filter_groups=[contact_models.FilterGroup(filters=[
                 contact_models.Filter(property_name="email", operator="EQ", value=email)])],
             properties=["email"], limit=10, after="0", sorts=[]),
         models=contact_models, status=200)

    # What a HubSpot source reads: contacts by last modification, paged
    # lists, merges, archive and privacy deletion.
    call("POST /crm/v3/objects/contacts/search (by lastmodifieddate)", contacts_search.do_search,
         contact_models.PublicObjectSearchRequest(
             filter_groups=[contact_models.FilterGroup(filters=[
                 contact_models.Filter(property_name="lastmodifieddate", operator="BETWEEN", value="0",
                                       high_value="4102444800000")])],
             properties=["email", "firstname"], limit=200, after="0",
             sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]),
         models=contact_models, status=200)
    call("GET /crm/v3/objects/contacts (after)", contacts_basic.get_page, limit=100, after="1",
         properties=["email"], archived=False, models=contact_models, status=200)
    twins = call("POST /crm/v3/objects/contacts/batch/create (merge pair)", contacts_batch.create,
                 contact_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                     contact_models.SimplePublicObjectInputForCreate(properties={"email": f"twin{i}.{run}@example.com"},
                                                                     associations=[]) for i in range(3)]),
                 models=contact_models, status=201)
    if twins:
        pair = sorted(r.id for r in twins.results)
        call("POST /crm/v3/objects/contacts/merge", contacts_basic.merge,
             contact_models.PublicMergeInput(primary_object_id=pair[0], object_id_to_merge=pair[1]),
             models=contact_models, status=200)
        call("DELETE /crm/v3/objects/contacts/{contactId}", contacts_basic.archive, pair[2],
             models=contact_models, status=204)
        call("GET /crm/v3/objects/contacts (archived)", contacts_basic.get_page, archived=True,
             models=contact_models, status=200)
    call("POST /crm/v3/objects/contacts/gdpr-delete", contacts_basic.purge,
         contact_models.PublicGdprDeleteInput(object_id=f"grace.{run}@example.com", id_property="email"),
         models=contact_models, status=204)

    # Deals.
    deal = call("POST /crm/v3/objects/deals/batch/create", deals_batch.create,
                deal_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                    deal_models.SimplePublicObjectInputForCreate(
                        properties={"dealname": f"Deal {run}", "dealstage": "qualifiedtobuy", "amount": "100",
                                    "pipeline": "default"}, associations=[])]),
                models=deal_models, status=201)
    deal_id = deal.results[0].id if deal else None
    if deal_id:
        call("POST /crm/v3/objects/deals/batch/read", deals_batch.read,
             deal_models.BatchReadInputSimplePublicObjectId(inputs=[deal_models.SimplePublicObjectId(id=deal_id)],
                                                            properties=["dealstage", "amount"],
                                                            properties_with_history=["dealstage"]),
             models=deal_models, status=200)
        call("GET /crm/v3/objects/deals/{dealId}", deals_basic.get_by_id, deal_id, models=deal_models, status=200)
        if contact_id:
            call("PUT /crm/v4/objects/{fromType}/{fromId}/associations/default/{toType}/{toId} (deal)",
                 assoc_basic.create_default, "deals", deal_id, "contacts", contact_id, models=assoc_models, status=200)
            call("POST /crm/v4/associations/{fromType}/{toType}/batch/read (deals)", assoc_batch.get_page,
                 "deals", "contacts",
                 assoc_models.BatchInputPublicFetchAssociationsBatchRequest(inputs=[
                     assoc_models.PublicFetchAssociationsBatchRequest(id=deal_id)]),
                 models=assoc_models, status=200)
    call("GET /crm/v3/objects/deals", deals_basic.get_page, limit=100, properties=["dealstage"],
         models=deal_models, status=200)
    call("POST /crm/v3/objects/deals/search (by hs_lastmodifieddate)", deals_search.do_search,
         deal_models.PublicObjectSearchRequest(
             filter_groups=[deal_models.FilterGroup(filters=[
                 deal_models.Filter(property_name="hs_lastmodifieddate", operator="GTE", value="0")])],
             properties=["dealstage"], limit=200, after="0",
             sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]),
         models=deal_models, status=200)

    # Companies through the generic objects API.
    company = call("POST /crm/v3/objects/{objectType}/batch/upsert", objects_batch.upsert, "companies",
                   object_models.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
                       object_models.SimplePublicObjectBatchInputUpsert(
                           id=f"c-{run}", id_property=f"ext_id_{run}",
                           properties={"domain": f"{run}.example", "name": "Example"})]),
                   models=object_models, status=200)
    call("POST /crm/v3/objects/{objectType}/batch/create", objects_batch.create, "companies",
         object_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
             object_models.SimplePublicObjectInputForCreate(properties={"domain": f"other-{run}.example"}, associations=[])]),
         models=object_models, status=201)
    company_id = company.results[0].id if company else None
    if company_id:
        call("POST /crm/v3/objects/{objectType}/batch/update", objects_batch.update, "companies",
             object_models.BatchInputSimplePublicObjectBatchInput(inputs=[
                 object_models.SimplePublicObjectBatchInput(id=company_id, properties={"name": "Example Inc"})]),
             models=object_models, status=200)
        call("POST /crm/v3/objects/{objectType}/batch/read", objects_batch.read, "companies",
             object_models.BatchReadInputSimplePublicObjectId(inputs=[object_models.SimplePublicObjectId(id=company_id)],
                                                              properties=["domain"], properties_with_history=[]),
             models=object_models, status=200)
        call("GET /crm/v3/objects/{objectType}/{objectId}", objects_basic.get_by_id, "companies", company_id,
             properties=["domain"], models=object_models, status=200)
        twin_companies = call("POST /crm/v3/objects/{objectType}/batch/create (merge pair)", objects_batch.create,
                              "companies", object_models.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                                  object_models.SimplePublicObjectInputForCreate(properties={"name": f"Twin {i}"},
                                                                                 associations=[]) for i in range(2)]),
                              models=object_models, status=201)
        if twin_companies:
            call("POST /crm/v3/objects/companies/merge", companies_basic.merge,
                 company_models.PublicMergeInput(primary_object_id=twin_companies.results[0].id,
                                                 object_id_to_merge=twin_companies.results[1].id),
                 models=company_models, status=200)
    call("GET /crm/v3/objects/{objectType}", objects_basic.get_page, "companies", limit=2, models=object_models, status=200)
    call("POST /crm/v3/objects/{objectType}/search", objects_search.do_search, "companies",
         object_models.PublicObjectSearchRequest(
             filter_groups=[object_models.FilterGroup(filters=[
                 object_models.Filter(property_name="domain", operator="EQ", value=f"{run}.example")])],
             properties=["domain"], limit=10, after="0", sorts=[]),
         models=object_models, status=200)
    call_error("POST /crm/v3/objects/{objectType}/batch/upsert (unknown property)", objects_batch.upsert, "companies",
               object_models.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
                   object_models.SimplePublicObjectBatchInputUpsert(id=f"c-{run}", id_property=f"ext_id_{run}",
                                                                    properties={f"nosuch_{run}": "x"})]),
               models=object_models, status=400)

    # Associations v4.
    if contact_id and company_id:
        call("POST /crm/v4/associations/{fromType}/{toType}/batch/associate/default", assoc_batch.create_default,
             "contacts", "companies",
             assoc_models.BatchInputPublicDefaultAssociationMultiPost(inputs=[
                 assoc_models.PublicDefaultAssociationMultiPost(_from=assoc_models.PublicObjectId(id=contact_id),
                                                                to=assoc_models.PublicObjectId(id=company_id))]),
             models=assoc_models, status=200)
        call("POST /crm/v4/associations/{fromType}/{toType}/batch/associate/default (unknown record)",
             assoc_batch.create_default, "contacts", "companies",
             assoc_models.BatchInputPublicDefaultAssociationMultiPost(inputs=[
                 assoc_models.PublicDefaultAssociationMultiPost(_from=assoc_models.PublicObjectId(id="999999999"),
                                                                to=assoc_models.PublicObjectId(id=company_id))]),
             models=assoc_models, status=200)
        call("POST /crm/v4/associations/{fromType}/{toType}/batch/create", assoc_batch.create, "contacts", "companies",
             assoc_models.BatchInputPublicAssociationMultiPost(inputs=[
                 assoc_models.PublicAssociationMultiPost(
                     _from=assoc_models.PublicObjectId(id=contact_id), to=assoc_models.PublicObjectId(id=company_id),
                     types=[assoc_models.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)])]),
             models=assoc_models, status=201)
        call("POST /crm/v4/associations/{fromType}/{toType}/batch/read", assoc_batch.get_page, "contacts", "companies",
             assoc_models.BatchInputPublicFetchAssociationsBatchRequest(inputs=[
                 assoc_models.PublicFetchAssociationsBatchRequest(id=contact_id)]),
             models=assoc_models, status=200)
        call("POST /crm/v4/associations/{fromType}/{toType}/batch/read (207, no associations)", assoc_batch.get_page,
             "contacts", "companies",
             assoc_models.BatchInputPublicFetchAssociationsBatchRequest(inputs=[
                 assoc_models.PublicFetchAssociationsBatchRequest(id=contact_id),
                 assoc_models.PublicFetchAssociationsBatchRequest(id=created.results[0].id if created else "1")]),
             models=assoc_models, status=207)
        call("PUT /crm/v4/objects/{fromType}/{fromId}/associations/default/{toType}/{toId}", assoc_basic.create_default,
             "companies", company_id, "contacts", contact_id, models=assoc_models, status=200)
        call("GET /crm/v4/objects/{fromType}/{fromId}/associations/{toType}", assoc_basic.get_page,
             "contacts", contact_id, "companies", models=assoc_models, status=200)

    # Lists v3 and memberships.
    made = call("POST /crm/v3/lists", lists.create,
                list_models.ListCreateRequest(name=f"schemas {run}", object_type_id="0-1", processing_type="MANUAL"),
                models=list_models, status=200)
    list_id = made.list.list_id if made else None
    if list_id:
        call("GET /crm/v3/lists/{listId}", lists.get_by_id, list_id, models=list_models, status=200)
        call("GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}", lists.get_by_name,
             f"schemas {run}", "0-1", models=list_models, status=200)
        if contact_id:
            call("PUT /crm/v3/lists/{listId}/memberships/add", members.add, list_id, [contact_id, "999999999"],
                 models=list_models, status=200)
            call("PUT /crm/v3/lists/{listId}/memberships/remove", members.remove, list_id, [contact_id],
                 models=list_models, status=200)
            call("PUT /crm/v3/lists/{listId}/memberships/add-and-remove", members.add_and_remove, list_id,
                 list_models.MembershipChangeRequest(record_ids_to_add=[contact_id], record_ids_to_remove=[]),
                 models=list_models, status=200)
        call("GET /crm/v3/lists/{listId}/memberships", members.get_page, list_id, limit=10, models=list_models, status=200)
    call_error("GET /crm/v3/lists/{listId} (unknown)", lists.get_by_id, "999999999", models=list_models, status=404)

    # Custom behavioral event definitions, through hubspot-sdk.
    sdk = hubspot_sdk.HubSpot(access_token=TOKEN, base_url=base, max_retries=0)
    defs = sdk.events.definitions
    event = f"signed_up_{run}"
    check_sdk("POST /events/2026-03/event-definitions", lambda: defs.with_raw_response.create(
        name=event, label="Signed up", description="A user signed up", include_default_properties=True,
        primary_object="CONTACT",
        property_definitions=[{"name": "plan", "label": "Plan", "type": "string"},
                              {"name": "tier", "label": "Tier", "type": "enumeration",
                               "options": [{"label": "Gold", "value": "gold", "displayOrder": 0, "hidden": False}]}]),
        ExternalBehavioralEventTypeDefinition, 201)
    check_sdk("GET /events/2026-03/event-definitions/{eventName}", lambda: defs.with_raw_response.get(event),
              ExternalBehavioralEventTypeDefinition, 200)
    check_sdk("POST /events/2026-03/event-definitions/{eventName}/property", lambda: defs.with_raw_response.create_property(
        event, name="seats", label="Seats", type="number"), SDKProperty, 201)

    # Event send, single and batch: 204 and no body.
    fqn = f"pe12345678_{event}"
    call("POST /events/v3/send", send_basic.send,
         send_models.BehavioralEventHttpCompletionRequest(event_name=fqn, email=email, properties={"plan": "pro"},
                                                          occurred_at=datetime.datetime.now(datetime.timezone.utc),
                                                          uuid=str(uuid.uuid4())),
         models=send_models, status=204)
    call("POST /events/v3/send/batch", send_batch.send,
         send_models.BatchedBehavioralEventHttpCompletionRequest(inputs=[
             send_models.BehavioralEventHttpCompletionRequest(event_name=fqn, email=email, properties={"plan": "pro"},
                                                              uuid=str(uuid.uuid4()))]),
         models=send_models, status=204)

    for endpoint in checked:
        print(f"checked {endpoint}")
    for cls, key in sorted(allowed):
        print(f"allowed {cls}.{key}: {DOCUMENTED_EXTRAS[(cls, key)]}")
    for line in mismatches:
        print(line)
    print(f"{len(checked)} answers checked, {len(mismatches)} mismatches")
    sys.exit(1 if mismatches else 0)


def check_sdk(endpoint, raw_call, model, status):
    """Calls a hubspot-sdk method through with_raw_response, lets the SDK
    parse the answer into model, and checks the raw JSON strictly."""
    try:
        resp = raw_call()
        parsed = resp.parse()
    except Exception as e:
        mismatch(endpoint, "", f"client call failed: {type(e).__name__}: {str(e)[:300]}")
        return
    checked.append(endpoint)
    if not isinstance(parsed, model):
        mismatch(endpoint, "", f"the SDK parsed a {type(parsed).__name__}, not a {model.__name__}")
    if resp.status_code != status:
        mismatch(endpoint, "", f"status {resp.status_code}, the API documents {status}")
    check_pydantic_model(endpoint, json.loads(resp.http_response.content), model)


if __name__ == "__main__":
    main()
