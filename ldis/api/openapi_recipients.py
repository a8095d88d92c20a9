"""The OpenAPI document's routes for areas, the audience preview, service types, services,
their managers and contacts, user accounts, and recipients in bulk (see `openapi_paths`)."""

from __future__ import annotations

from ldis.api import openapi_inputs as i
from ldis.api.openapi_paths import (
    ADMIN,
    AREA_CODE,
    AREA_READERS,
    BOOL_FLAG,
    CSV,
    EVERYONE,
    MANAGERS,
    PANEL_ADMIN,
    Op,
    Param,
)
from ldis.api.openapi_schemas import array, ref

AREA = "/api/v1/areas/{code}"
SERVICE = "/api/v1/services/{service_id}"
CONTACT = "/api/v1/contacts/{contact_id}"

RECIPIENT_OPERATIONS: tuple[Op, ...] = (
    # --- areas
    Op(
        "post", "/api/v1/areas", "Create an area", ADMIN, ref("Area"), ok=201, body=ref("AreaInput")
    ),
    Op("get", "/api/v1/areas", "Every area in tree order", AREA_READERS, array(ref("Area"))),
    Op(
        "get",
        "/api/v1/areas/locate",
        "The areas containing a point, most specific first",
        ("reporter", "panel", "admin"),
        array(ref("Area")),
        query=(
            Param("lat", {"type": "number", "minimum": -90, "maximum": 90}, required=True),
            Param("lon", {"type": "number", "minimum": -180, "maximum": 180}, required=True),
        ),
    ),
    Op("get", AREA, "One area", AREA_READERS, ref("AreaDetail")),
    Op("patch", AREA, "Rename or move an area", ADMIN, ref("AreaDetail"), body=ref("AreaUpdate")),
    Op(
        "put",
        f"{AREA}/boundary",
        "Set the area's boundary (up to 5 MB)",
        ADMIN,
        ref("AreaDetail"),
        body=i.GEOJSON,
    ),
    Op(
        "get",
        f"{AREA}/boundary",
        "The boundary as a GeoJSON Feature",
        AREA_READERS,
        ref("BoundaryFeature"),
        media="application/geo+json",
    ),
    Op("delete", f"{AREA}/boundary", "Remove the boundary", ADMIN, None, ok=204),
    Op(
        "post",
        f"{AREA}/neighbours",
        "Link two areas as neighbours (200 when already linked)",
        ADMIN,
        ref("AreaDetail"),
        ok=201,
        also=200,
        body=ref("NeighbourInput"),
    ),
    Op("delete", f"{AREA}/neighbours/{{other}}", "Unlink neighbours", ADMIN, None, ok=204),
    # --- audience
    Op(
        "post",
        "/api/v1/audience/preview",
        "Who an alert would reach, and who it would miss",
        PANEL_ADMIN,
        ref("Audience"),
        body=ref("AudienceQuery"),
    ),
    # --- service types, services, managers, contacts, verification
    Op(
        "get",
        "/api/v1/service-types",
        "Service types (`active=true`: only those that can be chosen)",
        EVERYONE,
        array(ref("ServiceType")),
        query=(Param("active", BOOL_FLAG),),
    ),
    Op(
        "post",
        "/api/v1/service-types",
        "Add a service type",
        ADMIN,
        ref("ServiceType"),
        ok=201,
        body=ref("ServiceTypeInput"),
    ),
    Op(
        "patch",
        "/api/v1/service-types/{code}",
        "Rename or retire a service type",
        ADMIN,
        ref("ServiceType"),
        body=ref("ServiceTypeUpdate"),
    ),
    Op(
        "post",
        "/api/v1/services",
        "Add a service",
        ADMIN,
        ref("Service"),
        ok=201,
        body=ref("ServiceInput"),
    ),
    Op(
        "get",
        "/api/v1/services",
        "Services (managers: theirs)",
        MANAGERS,
        array(ref("Service")),
        query=(Param("area", AREA_CODE), Param("type", {"type": "string", "maxLength": 60})),
    ),
    Op("get", SERVICE, "One service with its managers", MANAGERS, ref("Service")),
    Op(
        "patch",
        SERVICE,
        "Change a service (only the fields sent)",
        MANAGERS,
        ref("Service"),
        body=ref("ServiceUpdate"),
    ),
    Op("post", f"{SERVICE}/confirm", "Confirm the details are current", MANAGERS, ref("Service")),
    Op(
        "post",
        f"{SERVICE}/managers",
        "Make a user the service's manager",
        ADMIN,
        ref("Managers"),
        ok=201,
        body=ref("ManagerInput"),
    ),
    Op(
        "delete",
        f"{SERVICE}/managers/{{user_id}}",
        "Unlink a manager",
        ADMIN,
        ref("Managers"),
    ),
    Op(
        "post",
        f"{SERVICE}/contacts",
        "Add a contact (a code or link goes to each new address)",
        MANAGERS,
        ref("Contact"),
        ok=201,
        body=ref("ContactInput"),
    ),
    Op(
        "get",
        f"{SERVICE}/contacts",
        "The service's contacts, primary first",
        MANAGERS,
        array(ref("Contact")),
        query=(Param("removed", BOOL_FLAG, "also the removed ones"),),
    ),
    Op("get", CONTACT, "One contact", MANAGERS, ref("Contact")),
    Op(
        "patch",
        CONTACT,
        "Change a contact (`null` clears email, phone or quiet_hours)",
        MANAGERS,
        ref("Contact"),
        body=ref("ContactUpdate"),
    ),
    Op("delete", CONTACT, "Erase a contact", MANAGERS, ref("Contact")),
    Op(
        "get",
        f"{CONTACT}/export",
        "Everything held about the contact (audited)",
        MANAGERS,
        ref("ContactExport"),
    ),
    Op(
        "post",
        f"{CONTACT}/verification/{{channel}}",
        "Send a new code or link (one a minute)",
        MANAGERS,
        ref("Verification"),
    ),
    Op(
        "post",
        f"{CONTACT}/verification/{{channel}}/confirm",
        "Confirm an SMS code typed in on the person's behalf",
        MANAGERS,
        ref("Verification"),
        body=i.CODE_INPUT,
    ),
    # --- user accounts
    Op(
        "patch",
        "/api/v1/users/{user_id}",
        "Set the service a user files reports for",
        ADMIN,
        ref("User"),
        body=i.USER_CHANGE,
    ),
    # --- services and contacts in bulk
    Op(
        "post",
        "/api/v1/recipients/import",
        "Import services and contacts from CSV (dry run unless apply=true)",
        ADMIN,
        ref("RecipientsPlan"),
        body={"type": "string", "description": "the CSV file, UTF-8"},
        body_media=CSV,
        query=(
            Param("apply", BOOL_FLAG, "write it (default: a dry run)"),
            Param("plan", {"type": "string"}, "apply only if the plan is still this one"),
        ),
    ),
    Op(
        "get",
        "/api/v1/recipients/export.csv",
        "Every service and contact as CSV",
        ADMIN,
        {"type": "string"},
        media=CSV,
    ),
)
