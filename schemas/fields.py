"""The field registry: every column of the listing record, declared once.

The Pandera schema of staged rows, the DuckDB DDL of ``stg_listings``, the JSON
Schema of a published listing and the curator column guide are all generated from
``FIELDS`` by ``schemas.generate``; ``tests/test_schemas.py`` fails when a
generated file drifts from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import vocabularies as v

#: Scalar types a field may have; each maps to Pandera, DuckDB and JSON Schema.
TYPES = ("string", "strings", "date", "boolean", "timestamp", "sources")


@dataclass(frozen=True)
class Field:
    """One column of the listing record."""

    name: str
    type: str
    description: str
    #: a curator column (section 3 of the contract); False for derived fields
    curator: bool = True
    #: a field of the published listing (section 4 of the contract)
    listing: bool = True
    #: a curator file must carry this column, and every row a value in it
    required: bool = False
    #: header spellings accepted for the column, beside its name
    aliases: tuple[str, ...] = ()
    #: canonical values, when the field is a controlled vocabulary
    vocabulary: dict[str, v.Term] | None = None
    #: a regular expression every (normalised) value matches
    pattern: str | None = None
    #: names of the checks in ``schemas.checks`` a value must pass (value checks, date checks that know
    #: today, or country checks that judge the value inside the row's country)
    checks: tuple[str, ...] = ()
    #: longest text published; a longer one draws the warning ``<name>_too_long`` and is cut at a word boundary
    max_length: int | None = None
    #: what a curator should write, shown with every problem in this column
    fix: str = ""
    example: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"field {self.name}: type {self.type!r} is not one of {TYPES}")


E164_OR_SHORT = r"^(\+[1-9][0-9]{6,14}|[0-9]{3,8})$"
LISTING_ID = r"^lst_[0-9a-f]{12}$"
HTTP_URL = r"^https?://"
AREA = r"^(WW|[A-Z]{2}|[A-Z]{2}-[A-Z0-9]{1,3})$"

FIELDS: tuple[Field, ...] = (
    Field("id", "string", "Stable id of the listing: `lst_` and 12 lowercase hex digits.", curator=False, pattern=LISTING_ID),
    Field(
        "record_id",
        "string",
        "The source's own id for the row; the row number when absent.",
        listing=False,
        aliases=("id", "record", "ref", "reference", "identifier", "source id", "nr", "no"),
        fix="Give each row its own id, or leave the column out to use row numbers.",
        example="no-mental-helse",
    ),
    Field(
        "name",
        "string",
        "Name of the service as its organisation writes it.",
        required=True,
        aliases=(
            "service",
            "service name",
            "title",
            "organisation",
            "organization",
            "org",
            "navn",
            "namn",
            "nom",
            "nombre",
            "nome",
            "naam",
            "tjeneste",
            "tjänst",
            "dienst",
            "anbieter",
        ),
        checks=("not_placeholder",),
        fix="Write the service's real name, as its organisation writes it.",
        example="Mental Helse Hjelpetelefonen",
    ),
    Field(
        "kind",
        "string",
        "What kind of service it is.",
        required=True,
        aliases=("type", "service type", "category", "kategori", "typ", "art", "tipo", "genre", "catégorie"),
        vocabulary=v.KINDS,
        fix="Use one of the kinds in the column guide.",
        example="helpline",
    ),
    Field(
        "description",
        "string",
        "Plain-text description (markup and control characters removed).",
        aliases=(
            "about",
            "summary",
            "details",
            "notes",
            "beskrivelse",
            "beskrivning",
            "beschreibung",
            "description",
            "descripción",
            "descripcion",
        ),
        max_length=1000,
        fix="Write plain text, without HTML.",
        example="Free, anonymous support line for anyone in emotional distress.",
    ),
    Field(
        "url",
        "string",
        "The service's web address (http or https).",
        aliases=(
            "website",
            "web",
            "web site",
            "homepage",
            "home page",
            "link",
            "site",
            "nettside",
            "hjemmeside",
            "webbplats",
            "hemsida",
            "webseite",
            "site web",
            "sitio web",
            "página web",
            "pagina web",
        ),
        pattern=HTTP_URL,
        checks=("http_url", "url_public_suffix"),
        fix="Write the full web address, starting with https://.",
        example="https://mentalhelse.no",
    ),
    Field(
        "phone",
        "string",
        "Phone number in E.164 (`+4722000000`), or the digits of a national short number (`116123`).",
        aliases=(
            "telephone",
            "tel",
            "phone number",
            "telephone number",
            "helpline number",
            "number",
            "telefon",
            "telefonnummer",
            "téléphone",
            "telephone",
            "teléfono",
            "telefono",
            "tlf",
            "numéro",
        ),
        pattern=E164_OR_SHORT,
        checks=("phone_number",),
        fix="Write the number with its country code (+47 22 40 00 40) or as the short number people dial (116 123).",
        example="116 123",
    ),
    Field(
        "sms",
        "string",
        "Text (SMS) number, as `phone`.",
        aliases=("text", "text number", "sms number", "textline", "text line"),
        pattern=E164_OR_SHORT,
        checks=("phone_number",),
        fix="Write the number people text, e.g. 85258 or +44 7700 900000.",
        example="85258",
    ),
    Field(
        "chat_url",
        "string",
        "Web address of the service's chat (http or https).",
        aliases=("chat", "chat link", "webchat", "web chat", "chat address", "chatt", "chat url"),
        pattern=HTTP_URL,
        checks=("http_url", "url_public_suffix"),
        fix="Write the full address of the chat page, starting with https://.",
        example="https://sidetmedord.no",
    ),
    Field(
        "email",
        "string",
        "Email address of the service.",
        aliases=("e-mail", "mail", "email address", "e-post", "epost", "courriel", "correo", "correo electrónico"),
        checks=("email",),
        fix="Write one email address, like help@example.org.",
        example="",
    ),
    Field(
        "country",
        "string",
        "ISO 3166-1 alpha-2 country code, or `WW` for services open to everyone.",
        listing=False,
        required=True,
        aliases=("country code", "country_code", "land", "landkode", "pays", "país", "pais", "paese", "staat", "nation"),
        checks=("country_code",),
        fix="Write the country's two-letter code (NO, GB, DE) or its English name; WW for worldwide services.",
        example="NO",
    ),
    Field(
        "region",
        "strings",
        "ISO 3166-2 codes of the subdivisions served, inside `country`.",
        listing=False,
        aliases=(
            "regions",
            "state",
            "province",
            "county",
            "subdivision",
            "fylke",
            "län",
            "region",
            "bundesland",
            "région",
            "provincia",
            "kommune",
        ),
        checks=("region_code",),
        fix="Write the ISO 3166-2 code (NO-03) or the subdivision's name; leave it empty for national services.",
        example="NO-03",
    ),
    Field("areas", "strings", "Location codes the listing serves: `NO`, `NO-03` or `WW`.", curator=False, pattern=AREA),
    Field(
        "languages",
        "strings",
        "BCP 47 language tags the service is offered in.",
        aliases=("language", "lang", "langs", "språk", "sprog", "sprache", "sprachen", "langue", "langues", "idioma", "idiomas", "lingua"),
        checks=("bcp47",),
        fix="Write language codes (en, nb, de) or English names (English; Norwegian), separated by ;.",
        example="nb;en",
    ),
    Field(
        "topics",
        "strings",
        "What the service helps with.",
        aliases=("topic", "themes", "issues", "focus", "tema", "emne", "themen", "thèmes", "temas"),
        vocabulary=v.TOPICS,
        fix="Use topics from the column guide, separated by ;.",
        example="general;suicide",
    ),
    Field(
        "audience",
        "strings",
        "Who the service is for.",
        aliases=("audiences", "for", "target group", "who", "målgruppe", "målgrupp", "zielgruppe", "public", "público"),
        vocabulary=v.AUDIENCES,
        fix="Use audiences from the column guide, separated by ;.",
        example="youth;adults",
    ),
    Field(
        "moderation",
        "string",
        "Who runs or moderates it.",
        aliases=("moderated by", "moderator", "staffed by", "moderering"),
        vocabulary=v.MODERATION,
        fix="Write professional, peer, mixed, none or unknown.",
        example="peer",
    ),
    Field(
        "cost",
        "string",
        "What it costs the person seeking help.",
        aliases=("price", "fee", "fees", "pris", "kostnad", "kosten", "coût", "coste", "precio"),
        vocabulary=v.COSTS,
        fix="Write free, paid, freemium or unknown.",
        example="free",
    ),
    Field(
        "hours",
        "string",
        "`24/7`, or opening hours as text.",
        aliases=("opening hours", "open", "availability", "åpningstider", "öppettider", "öffnungszeiten", "horaires", "horario"),
        fix="Write 24/7 for always-open services, or the opening hours.",
        example="24/7",
    ),
    Field("always_open", "boolean", "True when `hours` is `24/7`.", curator=False),
    Field(
        "verified_at",
        "date",
        "Date a person last confirmed the record (YYYY-MM-DD).",
        aliases=(
            "verified",
            "last verified",
            "checked",
            "last checked",
            "date verified",
            "verifisert",
            "kontrollert",
            "geprüft",
            "vérifié",
        ),
        checks=("date_not_future", "verified_stale", "verified_expired"),
        fix="Write the date you confirmed the details, as YYYY-MM-DD.",
        example="2025-06-30",
    ),
    Field(
        "link_status",
        "string",
        "Link health: `alive`, `degraded`, `dead` or `unknown`.",
        curator=False,
        extra={"enum": "alive,degraded,dead,unknown"},
    ),
    Field("link_checked_at", "timestamp", "When the links were last checked (UTC).", curator=False),
    Field("sources", "sources", "Every input row merged into this listing, as `{source, record_id}`.", curator=False),
    Field("first_seen", "timestamp", "When the listing was first published (UTC).", curator=False),
    Field("updated_at", "timestamp", "When the listing's content last changed (UTC).", curator=False),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

#: Columns a curator file may hold, in the order of the column guide.
CURATOR_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.curator)

#: Fields of a published listing, in the order of CONTRACT section 4.
LISTING_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.listing)

#: Columns of a staged row: the curator columns plus what staging derives from them.
STAGED_COLUMNS: tuple[str, ...] = (*CURATOR_COLUMNS, "areas", "always_open")

#: Fields a listing must offer at least one of, so that someone can reach the service.
CONTACT_FIELDS: tuple[str, ...] = ("url", "phone", "sms", "chat_url")

#: A listing confirmed longer ago than this many months draws the warning ``verified_stale``.
VERIFIED_STALE_MONTHS = 12
#: ... and longer ago than this many months ``verified_expired``: it is left out of public exports (CONTRACT section 4;
#: ``warehouse/sql/out_listings.sql`` applies it through ``Settings.max_verified_age_months``).
VERIFIED_EXPIRED_MONTHS = 24

#: Multi-value cells are split on this character.
LIST_SEPARATOR = ";"

#: Fields whose change alone does not make a listing "changed" in a release's changes.json: they move with every
#: run (link checks) or only restate that something else changed.
UNTRACKED_FIELDS: tuple[str, ...] = ("link_checked_at", "updated_at")
