"""Country names as the lists write them -> ISO 3166-1 alpha-2 (`alpha2`). A name this table
does not know gives None (the parsers then leave the country out rather than guess)."""

from __future__ import annotations

import re
import unicodedata

_TABLE = """
AD Andorra|AE United Arab Emirates;UAE|AF Afghanistan|AG Antigua and Barbuda|AL Albania
AM Armenia|AO Angola|AR Argentina|AT Austria|AU Australia|AW Aruba|AZ Azerbaijan
BA Bosnia and Herzegovina;Bosnia|BB Barbados|BD Bangladesh|BE Belgium|BF Burkina Faso
BG Bulgaria|BH Bahrain|BI Burundi|BJ Benin|BN Brunei;Brunei Darussalam|BO Bolivia
BR Brazil|BS Bahamas;Bahamas, The;The Bahamas|BT Bhutan|BW Botswana|BY Belarus|BZ Belize
CA Canada
CD Democratic Republic of the Congo;Congo, Democratic Republic of the;DRC;Congo (Kinshasa)
CF Central African Republic
CG Congo;Congo, Republic of the;Republic of the Congo;Congo (Brazzaville)
CH Switzerland|CI Cote d Ivoire;Cote d'Ivoire;Ivory Coast|CL Chile|CM Cameroon
CN China;People's Republic of China|CO Colombia|CR Costa Rica|CU Cuba
CV Cabo Verde;Cape Verde|CY Cyprus|CZ Czech Republic;Czechia|DE Germany|DJ Djibouti
DK Denmark|DM Dominica|DO Dominican Republic|DZ Algeria|EC Ecuador|EE Estonia|EG Egypt
ER Eritrea|ES Spain|ET Ethiopia|FI Finland|FJ Fiji|FR France|GA Gabon
GB United Kingdom;United Kingdom of Great Britain and Northern Ireland;UK;Great Britain;England
GD Grenada|GE Georgia|GG Guernsey|GH Ghana|GI Gibraltar|GM Gambia;The Gambia;Gambia, The
GN Guinea|GQ Equatorial Guinea|GR Greece|GT Guatemala|GW Guinea-Bissau;Guinea Bissau
GY Guyana|HK Hong Kong;China, Hong Kong Special Administrative Region|HN Honduras
HR Croatia|HT Haiti|HU Hungary|ID Indonesia|IE Ireland|IL Israel|IN India|IQ Iraq
IR Iran;Iran (Islamic Republic of);Islamic Republic of Iran|IS Iceland|IT Italy|JE Jersey
JM Jamaica|JO Jordan|JP Japan|KE Kenya|KG Kyrgyzstan|KH Cambodia|KM Comoros
KN Saint Kitts and Nevis|KP Democratic People's Republic of Korea;Korea, North;North Korea;DPRK
KR Korea, South;South Korea;Republic of Korea|KW Kuwait|KY Cayman Islands|KZ Kazakhstan
LA Laos;Lao People's Democratic Republic|LB Lebanon|LC Saint Lucia|LI Liechtenstein
LK Sri Lanka|LR Liberia|LS Lesotho|LT Lithuania|LU Luxembourg|LV Latvia|LY Libya
MA Morocco|MC Monaco|MD Moldova;Republic of Moldova|ME Montenegro|MG Madagascar
MH Marshall Islands|MK North Macedonia;Macedonia;Macedonia, The Former Yugoslav Republic of
ML Mali|MM Myanmar;Burma|MN Mongolia|MO Macau;Macao|MR Mauritania|MT Malta|MU Mauritius
MV Maldives|MW Malawi|MX Mexico|MY Malaysia|MZ Mozambique|NA Namibia|NE Niger|NG Nigeria
NI Nicaragua|NL Netherlands|NO Norway|NP Nepal|NZ New Zealand|OM Oman|PA Panama|PE Peru
PG Papua New Guinea|PH Philippines|PK Pakistan|PL Poland
PS State of Palestine;Palestine;Palestinian;West Bank;Gaza;Region: Gaza|PT Portugal|PW Palau
PY Paraguay|QA Qatar|RO Romania|RS Serbia|RU Russia;Russian Federation|RW Rwanda
SA Saudi Arabia|SB Solomon Islands|SC Seychelles|SD Sudan|SE Sweden|SG Singapore
SI Slovenia|SK Slovakia|SL Sierra Leone|SM San Marino|SN Senegal|SO Somalia|SR Suriname
SS South Sudan|SV El Salvador|SY Syria;Syrian Arab Republic|TD Chad|TG Togo|TH Thailand
TJ Tajikistan|TL Timor-Leste;East Timor|TM Turkmenistan|TN Tunisia|TR Turkey;Türkiye
TT Trinidad and Tobago|TW Taiwan|TZ Tanzania;United Republic of Tanzania|UA Ukraine
UG Uganda|US United States;United States of America;USA;U.S.A.|UY Uruguay|UZ Uzbekistan
VC Saint Vincent and the Grenadines|VE Venezuela|VG British Virgin Islands;Virgin Islands, British
VN Viet Nam;Vietnam|VU Vanuatu|WS Samoa|XK Kosovo|YE Yemen|ZA South Africa|ZM Zambia
ZW Zimbabwe|CW Curacao|AN Netherlands Antilles|LU Luxemburg|SZ Eswatini;Swaziland
"""

_SPACE = re.compile(r"[^a-z0-9]+")


def _key(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return _SPACE.sub(" ", text).strip()


def _build() -> dict[str, str]:
    table: dict[str, str] = {}
    for chunk in _TABLE.replace("\n", "|").split("|"):
        chunk = chunk.strip()
        if not chunk:
            continue
        code, _, names = chunk.partition(" ")
        for name in names.split(";"):
            table[_key(name)] = code
        table[code.lower()] = code
    return table


_BY_NAME = _build()
CODES = frozenset(_BY_NAME.values())

# Every officially assigned ISO 3166-1 alpha-2 code (249), and XK (Kosovo: user-assigned, but
# the lists and the banks use it): what a query's `country` may be. `CODES` above is only the
# countries the lists name, which is not every country a client may screen a name for.
_ALPHA2 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW XK
"""
ISO_3166_ALPHA2: frozenset[str] = frozenset(_ALPHA2.split())
assert len(ISO_3166_ALPHA2) == 250, "249 assigned codes and XK"
assert CODES - {"AN"} <= ISO_3166_ALPHA2, "AN (Netherlands Antilles) was withdrawn in 2011"


def is_alpha2(code: str) -> bool:
    """Whether `code` is an ISO 3166-1 alpha-2 code (upper case) or XK."""
    return code in ISO_3166_ALPHA2


def alpha2(name: str | None) -> str | None:
    """The alpha-2 code of a country name or code as the lists and queries write it."""
    if not name:
        return None
    return _BY_NAME.get(_key(name))
