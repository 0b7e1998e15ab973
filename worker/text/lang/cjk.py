"""Chinese, Japanese and Korean: numbers, currencies, units, percentages and
times (no abbreviations or month names to expand; dates stay as written)."""
from __future__ import annotations

from worker.text.lang.base import Locale, nouns, units

_ZH_UNITS = {"km": ("公里", "公里"), "m": ("米", "米"), "cm": ("厘米", "厘米"),
             "mm": ("毫米", "毫米"), "kg": ("公斤", "公斤"), "g": ("克", "克"),
             "l": ("升", "升"), "h": ("小时", "小时"), "min": ("分钟", "分钟"),
             "s": ("秒", "秒"), "c": ("摄氏度", "摄氏度"), "deg": ("度", "度"),
             "gb": ("G", "G"), "mb": ("兆", "兆")}
_JA_UNITS = {"km": ("キロメートル", "キロメートル"), "m": ("メートル", "メートル"),
             "cm": ("センチメートル", "センチメートル"), "mm": ("ミリメートル", "ミリメートル"),
             "kg": ("キログラム", "キログラム"), "g": ("グラム", "グラム"),
             "l": ("リットル", "リットル"), "h": ("時間", "時間"), "min": ("分", "分"),
             "s": ("秒", "秒"), "c": ("度", "度"), "deg": ("度", "度"),
             "gb": ("ギガバイト", "ギガバイト"), "mb": ("メガバイト", "メガバイト")}
_KO_UNITS = {"km": ("킬로미터", "킬로미터"), "m": ("미터", "미터"),
             "cm": ("센티미터", "센티미터"), "mm": ("밀리미터", "밀리미터"),
             "kg": ("킬로그램", "킬로그램"), "g": ("그램", "그램"), "l": ("리터", "리터"),
             "h": ("시간", "시간"), "min": ("분", "분"), "s": ("초", "초"),
             "c": ("도", "도"), "deg": ("도", "도"), "gb": ("기가바이트", "기가바이트"),
             "mb": ("메가바이트", "메가바이트")}

ZH = Locale(
    code="zh", full=True,
    words={"minus": "负", "point": "点", "percent_prefix": "百分之", "hour": "点",
           "minute": "分", "second": "秒", "and": "和", "dot": "点", "at": "at"},
    currencies=nouns({"$": ("美元", "美元"), "€": ("欧元", "欧元"), "£": ("英镑", "英镑"),
                      "¥": ("元", "元"), "￥": ("元", "元"), "₩": ("韩元", "韩元")}),
    units=units(_ZH_UNITS),
)

JA = Locale(
    code="ja", full=True,
    words={"minus": "マイナス", "point": "点", "percent": "パーセント", "hour": "時",
           "minute": "分", "second": "秒", "and": "と", "dot": "ドット", "at": "アット"},
    currencies=nouns({"$": ("ドル", "ドル"), "€": ("ユーロ", "ユーロ"), "£": ("ポンド", "ポンド"),
                      "¥": ("円", "円"), "￥": ("円", "円"), "₩": ("ウォン", "ウォン")}),
    units=units(_JA_UNITS),
)

KO = Locale(
    code="ko", full=True,
    words={"minus": "마이너스", "point": "점", "percent": "퍼센트", "hour": "시",
           "minute": "분", "second": "초", "and": "그리고", "dot": "닷", "at": "앳"},
    currencies=nouns({"$": ("달러", "달러"), "€": ("유로", "유로"), "£": ("파운드", "파운드"),
                      "¥": ("엔", "엔"), "₩": ("원", "원")}),
    units=units(_KO_UNITS),
)

# Korean says the hour in native numbers ("열 시"), the minutes in Sino-Korean.
KO_HOURS = ("영", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉", "열",
            "열한", "열두")
