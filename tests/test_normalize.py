"""Normalization: what a narrator writes, read as words in the job's language.
Each case is input -> the exact spoken text. Pure Python."""
from __future__ import annotations

import pytest

from worker.text.frontend import prepare_text
from worker.text.normalize import normalize_tokens

CASES = [
    ('en', '$45', 'forty-five dollars'),
    ('en', '$1,234.50', 'one thousand two hundred thirty-four dollars and fifty cents'),
    ('en', '€5', 'five euros'),
    ('en', '£3.20', 'three pounds and twenty pence'),
    ('en', '$0.99', 'ninety-nine cents'),
    ('en', '$1', 'one dollar'),
    ('en', '$5.00', 'five dollars'),
    ('en', '-$5', 'minus five dollars'),
    ('en', '¥500', 'five hundred yen'),
    ('en', '45%', 'forty-five percent'),
    ('en', '12.5%', 'twelve point five percent'),
    ('en', '-3', 'minus three'),
    ('en', '3.14', 'three point one four'),
    ('en', '1,000,000', 'one million'),
    ('en', '2nd', 'second'),
    ('en', '21st', 'twenty-first'),
    ('en', '11th', 'eleventh'),
    ('en', '103rd', 'one hundred third'),
    ('en', '1999', 'nineteen ninety-nine'),
    ('en', 'in 2024', 'in twenty twenty-four'),
    ('en', '2005', 'two thousand five'),
    ('en', '1500 people', 'fifteen hundred people'),
    ('en', '10:30', 'ten thirty'),
    ('en', '10:05', 'ten oh five'),
    ('en', '10:00', "ten o'clock"),
    ('en', '14:45', 'fourteen forty-five'),
    ('en', '10:30am', 'ten thirty a m'),
    ('en', '10:30 a.m.', 'ten thirty a m.'),
    ('en', '7pm', 'seven p m'),
    ('en', '0:15', 'twelve fifteen a m'),
    ('en', '3/4/2025', 'March fourth, twenty twenty-five'),
    ('en', '2025-03-04', 'March fourth, twenty twenty-five'),
    ('en', 'March 4, 2025', 'March fourth, twenty twenty-five'),
    ('en', '5 km', 'five kilometers'),
    ('en', '10kg', 'ten kilograms'),
    ('en', '1 km', 'one kilometer'),
    ('en', '72°F', 'seventy-two degrees Fahrenheit'),
    ('en', '-5°C', 'minus five degrees Celsius'),
    ('en', '2.5GB', 'two point five gigabytes'),
    ('en', '60 mph', 'sixty miles per hour'),
    ('en', 'Dr. Smith', 'Doctor Smith'),
    ('en', 'Mr. Jones', 'Mister Jones'),
    ('en', 'St. Louis', 'Saint Louis'),
    ('en', 'Main St.', 'Main Street.'),
    ('en', 'Elm Dr.', 'Elm Drive.'),
    ('en', 'apples, pears, etc.', 'apples, pears, et cetera.'),
    ('en', 'e.g. this', 'for example this'),
    ('en', 'i.e., that', 'that is, that'),
    ('en', 'cats vs. dogs', 'cats versus dogs'),
    ('en', 'A & B', 'A and B'),
    ('en', '#1', 'number one'),
    ('en', 'No. 5', 'number five'),
    ('en', 'https://example.com/pricing', 'example dot com slash pricing'),
    ('en', 'www.example.org', 'w w w dot example dot org'),
    ('en', 'john.doe@example.com', 'john dot doe at example dot com'),
    ('en', 'example.com.', 'example dot com.'),
    ('en', '3/4', 'three quarters'),
    ('en', '1/2', 'one half'),
    ('en', '24/7', 'twenty-four seven'),
    ('en', 'the 1990s', 'the nineteen nineties'),
    ('en', '1990-1995', 'nineteen ninety to nineteen ninety-five'),
    ('en', '10-20', 'ten to twenty'),
    ('en', '555-1234', 'five five five one two three four'),
    ('en', 'COVID-19', 'COVID nineteen'),
    ('en', 'MP3', 'MP three'),
    ('en', 'AT&T', 'AT and T'),
    ('en', '007', 'zero zero seven'),
    ('en', '$2.5 million', 'two point five million dollars'),
    ('en', '$5M', 'five million dollars'),
    ('en', 'score 3:2', 'score three to two'),
    ('en-GB', '3/4/2025', 'April third, twenty twenty-five'),
    ('de', '1.234,50 €', 'eintausendzweihundertvierunddreißig Euro und fünfzig Cent'),
    ('de', '3,14', 'drei Komma eins vier'),
    ('de', '-3', 'minus drei'),
    ('de', '45 %', 'fünfundvierzig Prozent'),
    ('de', '45%', 'fünfundvierzig Prozent'),
    ('de', '1999', 'neunzehnhundertneunundneunzig'),
    ('de', '2024', 'zweitausendvierundzwanzig'),
    ('de', '10:30', 'zehn Uhr dreißig'),
    ('de', '10:30 Uhr', 'zehn Uhr dreißig'),
    ('de', '1:00', 'ein Uhr'),
    ('de', '3.4.2025', 'dritter April zweitausendfünfundzwanzig'),
    ('de', '2025-03-04', 'vierter März zweitausendfünfundzwanzig'),
    ('de', 'am 3. Oktober', 'am dritten Oktober'),
    ('de', '5 km', 'fünf Kilometer'),
    ('de', '1t', 'eine Tonne'),
    ('de', '10kg', 'zehn Kilogramm'),
    ('de', 'z.B. das', 'zum Beispiel das'),
    ('de', 'Dr. Müller', 'Doktor Müller'),
    ('de', 'Nr. 5', 'Nummer fünf'),
    ('de', 'usw.', 'und so weiter.'),
    ('de', '1 000 000', 'eine Million'),
    ('de', '$45', 'fünfundvierzig Dollar'),
    ('de', '1 €', 'ein Euro'),
    ('de', '3 Mio. €', 'drei Millionen Euro'),
    ('fr', '1er mars', 'premier mars'),
    ('fr', '1re fois', 'première fois'),
    ('fr', '2e', 'deuxième'),
    ('fr', '3 000 000', 'trois millions'),
    ('fr', '1,50 €', 'un euro et cinquante centimes'),
    ('fr', '21 €', 'vingt et un euros'),
    ('fr', '45 %', 'quarante-cinq pour cent'),
    ('fr', '10h30', 'dix heures trente'),
    ('fr', '10:30', 'dix heures trente'),
    ('fr', '1:00', 'une heure'),
    ('fr', '21:00', 'vingt et une heures'),
    ('fr', '3/4/2025', 'trois avril deux mille vingt-cinq'),
    ('fr', 'M. Dupont', 'Monsieur Dupont'),
    ('fr', 'Mme Curie', 'Madame Curie'),
    ('fr', '3,14', 'trois virgule un quatre'),
    ('fr', '-3', 'moins trois'),
    ('fr', '1 £', 'une livre'),
    ('fr', '5 km', 'cinq kilomètres'),
    ('fr', '1,5 km', 'un virgule cinq kilomètre'),
    ('fr', '2 millions €', "deux millions d'euros"),
    ('es', '1º', 'primero'),
    ('es', '2ª', 'segunda'),
    ('es', '3er', 'tercer'),
    ('es', '1.234,50 €', 'mil doscientos treinta y cuatro euros y cincuenta céntimos'),
    ('es', '1 $', 'un dólar'),
    ('es', '21 €', 'veintiún euros'),
    ('es', '200 £', 'doscientas libras'),
    ('es', '45 %', 'cuarenta y cinco por ciento'),
    ('es', '10:30', 'diez y treinta'),
    ('es', '1:00', 'una en punto'),
    ('es', '3/4/2025', 'tres de abril de dos mil veinticinco'),
    ('es', 'Sr. García', 'señor García'),
    ('es', '-3', 'menos tres'),
    ('es', '3,14', 'tres coma uno cuatro'),
    ('es', '21000', 'veintiún mil'),
    ('es', '5 km', 'cinco kilómetros'),
    ('zh', '今天是2024年3月4日。', '今天是二零二四年三月四日。'),
    ('zh', '价格是45%。', '价格是百分之四十五。'),
    ('zh', '¥45', '四十五元'),
    ('zh', '3.14', '三点一四'),
    ('zh', '-3', '负三'),
    ('zh', '10:30', '十点三十分'),
    ('zh', '10010', '一万零一十'),
    ('zh', '2025-03-04', '二零二五年三月四日'),
    ('zh', '100000001', '一亿零一'),
    ('ja', '2024年', '二千二十四年'),
    ('ja', '45%', '四十五パーセント'),
    ('ja', '¥1000', '千円'),
    ('ja', '10:30', '十時三十分'),
    ('ko', '2024년', '이천이십사 년'),
    ('ko', '10:30', '열 시 삼십 분'),
    ('ko', '45%', '사십오 퍼센트'),
    ('ko', '₩1000', '천 원'),
    ('it', 'ho 45 anni', 'ho quarantacinque anni'),
    ('pt-br', '-3', 'menos três'),
    ('hi', '45', '45'),
    ('el', '45', '45'),
]


@pytest.mark.parametrize("language, text, spoken", CASES)
def test_normalized(language, text, spoken):
    assert prepare_text(text, language=language).spoken_text == spoken


def test_the_table_covers_enough():
    languages = {language.split("-")[0] for language, _, _ in CASES}
    assert len(CASES) >= 60 and {"en", "de", "fr", "es", "zh", "ja", "ko"} <= languages


def test_a_5000_digit_number_is_read_digit_by_digit():
    digits = "31415926535" * 455  # 5,005 digits
    spoken = prepare_text(digits).spoken_text.split()
    assert len(spoken) == len(digits)
    assert spoken[:3] == ["three", "one", "four"]
    grouped = prepare_text("1,234" + ",567" * 20).spoken_text
    assert grouped.split()[:2] == ["one", "two"]


def test_numbers_only_languages_and_unknown_ones():
    italian = prepare_text("ho 45 anni e 3,5 kg", language="it")
    assert italian.spoken_text == "ho quarantacinque anni e tre virgola cinque kg"
    assert "only plain numbers" in italian.notes[0]
    assert prepare_text("45 km", language="hi").spoken_text == "45 km"


def test_normalize_off_leaves_text_as_written():
    assert prepare_text("$45 on 3/4/2025", normalize=False).spoken_text == "$45 on 3/4/2025"


def test_readings_over_several_tokens_mark_the_rest_as_said():
    result = normalize_tokens(["3", "000", "000", "€."], "fr")
    assert result.spoken == ("trois millions d'euros.", "", "", "")
    assert result.said_by == (0, 0, 0, 0)


@pytest.mark.parametrize("text", [
    "$", "$.", "1/0", "0/0", "99:99", "31/31/2025", "2/30/2025", "1e10", "1..2", "--5",
    "$-", "%%", "1,2,3,4", "12:", ":30", "#", "#" * 50, "www.", "@@", "a@b", "1st2nd",
    "9" * 22 + "st", "$" + "9" * 40, "9" * 30 + "%", "-" * 10 + "5", "10:30:99",
    "²³", "½", "٣٤٥", "１２３", "๒๕๖๗", "1️⃣", "v1.2.3", "3.4.5.6.7", "+", "=",
])
@pytest.mark.parametrize("language", ["en", "de", "fr", "es", "zh", "ja", "ko", "it", "ru"])
def test_odd_inputs_never_raise(text, language):
    prepare_text(f"x {text} y", language=language)
