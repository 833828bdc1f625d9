"""Controlled vocabularies of the listing record, with the synonyms curators write.

Each vocabulary maps a canonical value to a one-line description and the synonyms
that are accepted for it.  Matching is case-, space-, hyphen- and
underscore-insensitive (see ``vocabulary_key``).  This module is data: the field
registry (``schemas.fields``) points at these tables, and everything else (the
Pandera schema, the JSON Schema, the curator column guide) is generated from it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One canonical value of a vocabulary."""

    description: str
    synonyms: tuple[str, ...] = ()


KINDS: dict[str, Term] = {
    "online_community": Term(
        "An online peer community (app or site) where people support each other.",
        ("community", "peer community", "peer support community", "app", "online peer support"),
    ),
    "forum": Term("A message board or discussion forum.", ("message board", "discussion forum", "board", "subreddit")),
    "helpline": Term(
        "A telephone line answered by a person.",
        (
            "hotline",
            "phone line",
            "telephone",
            "crisis line",
            "crisis helpline",
            "lifeline",
            "hjelpetelefon",
            "telefon",
            "hjälplinje",
            "stødtelefon",
            "beratungstelefon",
            "ligne d'écoute",
            "línea de ayuda",
            "linea de ayuda",
        ),
    ),
    "chat": Term("A live one-to-one web or app chat.", ("webchat", "web chat", "live chat", "online chat", "chat line", "chatt", "tchat")),
    "text_line": Term(
        "A support service reached by SMS or messaging.", ("textline", "text", "sms", "sms line", "crisis text line", "text service")
    ),
    "support_group": Term(
        "A (self-)help group that meets in person or online.",
        (
            "group",
            "self-help group",
            "selfhelp group",
            "peer group",
            "mutual aid group",
            "selvhjelpsgruppe",
            "självhjälpsgrupp",
            "selbsthilfegruppe",
            "groupe de parole",
            "grupo de apoyo",
        ),
    ),
    "online_therapy": Term(
        "Therapy or counselling delivered online by professionals.",
        ("e-therapy", "etherapy", "teletherapy", "online counselling", "online counseling", "digital therapy"),
    ),
    "psychotherapy": Term("In-person or clinic-based psychotherapy or counselling.", ("therapy", "counselling", "counseling")),
}

TOPICS: dict[str, Term] = {
    "general": Term("Emotional support for anyone, about anything.", ("emotional support", "mental health", "any", "all")),
    "depression": Term("Low mood and depression.", ("low mood",)),
    "anxiety": Term("Anxiety, panic and phobias.", ("panic", "phobia", "phobias", "worry")),
    "suicide": Term("Suicidal thoughts and suicide prevention.", ("suicide prevention", "suicidal thoughts", "crisis")),
    "self_harm": Term("Self-harm and self-injury.", ("self-injury", "selfharm", "self injury")),
    "eating_disorders": Term(
        "Anorexia, bulimia, binge eating and other eating disorders.", ("eating disorder", "ed", "anorexia", "bulimia")
    ),
    "bipolar": Term("Bipolar disorder.", ("bipolar disorder", "manic depression")),
    "psychosis": Term("Psychosis and schizophrenia.", ("schizophrenia",)),
    "trauma": Term("Trauma and post-traumatic stress.", ("ptsd", "post-traumatic stress", "cptsd")),
    "substance_use": Term(
        "Alcohol and drug use, addiction and recovery.", ("addiction", "alcohol", "drugs", "substance abuse", "recovery")
    ),
    "gambling": Term("Gambling problems.", ("gambling addiction", "problem gambling")),
    "grief": Term("Bereavement and loss, including by suicide.", ("bereavement", "loss")),
    "loneliness": Term("Loneliness and isolation.", ("isolation", "lonely")),
    "lgbtq": Term("Sexual orientation and gender identity.", ("lgbt", "lgbtq+", "lgbtqia", "queer", "trans", "transgender")),
    "abuse": Term(
        "Abuse and violence, including domestic and sexual abuse.", ("domestic abuse", "domestic violence", "violence", "sexual abuse")
    ),
    "relationships": Term("Family, partner and other relationships.", ("family", "relationship")),
    "perinatal": Term("Mental health in pregnancy and after birth.", ("postnatal", "postpartum", "pregnancy", "maternal mental health")),
    "ocd": Term("Obsessive-compulsive disorder.", ("obsessive compulsive disorder",)),
    "personality_disorders": Term("Personality disorders, including BPD.", ("bpd", "borderline", "personality disorder")),
    "stress": Term("Stress and burnout.", ("burnout", "work stress")),
    "bullying": Term("Bullying and cyberbullying.", ("cyberbullying",)),
    "neurodiversity": Term("ADHD, autism and other neurodivergence.", ("adhd", "autism", "neurodivergent")),
}

AUDIENCES: dict[str, Term] = {
    "everyone": Term("Open to anyone.", ("all", "anyone", "general public", "public")),
    "children": Term("Children (up to about 12).", ("kids", "child")),
    "youth": Term(
        "Teenagers and young people.", ("young people", "teens", "teenagers", "young adults", "adolescents", "youth and young adults")
    ),
    "adults": Term("Adults.", ("adult",)),
    "older_adults": Term("Older adults.", ("seniors", "elderly", "older people")),
    "lgbtq": Term("LGBTQ+ people.", ("lgbt", "lgbtq+", "queer", "trans", "transgender")),
    "veterans": Term("Veterans and service members.", ("veteran", "military", "service members")),
    "carers": Term("Carers of people with mental illness.", ("caregivers", "caregiver", "carer", "family carers")),
    "parents": Term("Parents.", ("parent", "mothers", "fathers")),
    "students": Term("Students.", ("student", "university students")),
    "men": Term("Men.", ("male",)),
    "women": Term("Women.", ("female",)),
    "indigenous": Term("Indigenous peoples.", ("first nations", "aboriginal", "maori")),
}

MODERATION: dict[str, Term] = {
    "professional": Term(
        "Run or moderated by paid, trained professionals.", ("professionals", "clinical", "clinically moderated", "staff")
    ),
    "peer": Term("Run or moderated by peers or trained volunteers.", ("peers", "volunteer", "volunteers", "peer moderated", "community")),
    "mixed": Term("Peers and professionals together.", ("both", "peer and professional")),
    "none": Term("Not moderated.", ("unmoderated", "no")),
    "unknown": Term("Not known.", ("", "?", "n/a")),
}

COSTS: dict[str, Term] = {
    "free": Term("Free of charge to the person seeking help.", ("gratis", "kostenlos", "gratuit", "gratuito", "no cost", "free of charge")),
    "paid": Term("The person pays.", ("fee", "charged", "paying")),
    "freemium": Term("Free to join, with paid parts.", ("free and paid", "partly free")),
    "unknown": Term("Not known.", ("", "?", "n/a")),
}

#: Values of ``country`` that mean "open to everyone, wherever they are".
WORLDWIDE: tuple[str, ...] = ("ww", "worldwide", "global", "international", "world", "everywhere", "online")

#: Hours notations that mean "always open" (they are stored as ``24/7``).
ALWAYS_OPEN: tuple[str, ...] = (
    "24/7",
    "24x7",
    "24 7",
    "24h",
    "24 h",
    "24 hours",
    "24-hour",
    "24 hours a day",
    "always open",
    "around the clock",
    "døgnåpen",
    "dygnet runt",
    "døgnet rundt",
    "rund um die uhr",
    "24h/24",
    "24h/24 7j/7",
    "24 horas",
)

#: Names that are placeholders, never a service's name.
PLACEHOLDER_NAMES: frozenset[str] = frozenset({"n/a", "na", "none", "test", "tbd", "todo", "xxx", "-", "?", "unknown", "name"})


def vocabulary_key(value: str) -> str:
    """The matching key of a vocabulary value: casefolded, accents kept, separators folded."""
    value = unicodedata.normalize("NFKC", value).casefold().strip()
    return re.sub(r"[\s_\-]+", " ", value)


def lookup_table(vocabulary: dict[str, Term]) -> dict[str, str]:
    """Every accepted spelling (canonical or synonym) -> the canonical value."""
    table: dict[str, str] = {}
    for canonical, term in vocabulary.items():
        for spelling in (canonical, *term.synonyms):
            table.setdefault(vocabulary_key(spelling), canonical)
    return table
