"""Static tables for the demo district: streets, communities, course titles, tags and tastes.

The names follow a Zhoushan-like coastal district (Putuo): a few sub-district streets, each with a
handful of residential communities, and a course catalogue a community service centre there
would run. Everything here is plain data; ``recommender.demo.generator`` draws from it.
"""

from __future__ import annotations

from typing import NamedTuple

# (community_id, Chinese name, pinyin, street, kind, relative population)
COMMUNITIES: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("C01", "文康社区", "Wenkang", "东港街道", "leading", 1.4),
    ("C02", "中昌社区", "Zhongchang", "东港街道", "leading", 1.2),
    ("C03", "莲洋社区", "Lianyang", "东港街道", "inclusive", 1.0),
    ("C04", "海华社区", "Haihua", "东港街道", "inclusive", 0.9),
    ("C05", "东晟社区", "Dongsheng", "东港街道", "other", 0.7),
    ("C06", "中洲社区", "Zhongzhou", "沈家门街道", "leading", 1.3),
    ("C07", "西河社区", "Xihe", "沈家门街道", "inclusive", 1.1),
    ("C08", "墩头社区", "Duntou", "沈家门街道", "inclusive", 0.9),
    ("C09", "鲁家峙社区", "Lujiazhi", "沈家门街道", "other", 0.6),
    ("C10", "南岙社区", "Nan'ao", "沈家门街道", "other", 0.5),
    ("C11", "樟州社区", "Zhangzhou", "朱家尖街道", "inclusive", 0.6),
    ("C12", "顺母社区", "Shunmu", "朱家尖街道", "other", 0.5),
    ("C13", "展茅社区", "Zhanmao", "展茅街道", "inclusive", 0.5),
    ("C14", "干施岙社区", "Ganshi'ao", "展茅街道", "other", 0.4),
)


class CourseBase(NamedTuple):
    """A kind of course; the catalogue draws several runs (terms, levels) of each."""

    title: str
    category: str
    tags: tuple[str, ...]
    # Target-band sets with their relative weights; the first is the usual one.
    bands: tuple[tuple[str, ...], ...]
    band_weights: tuple[float, ...]
    family: bool = False  # offered as a 亲子/祖孙 course for a preschooler and a carer


PRE, SCH, WRK, OLD = "preschool", "school_age", "working_age", "elderly"

COURSE_BASES: tuple[CourseBase, ...] = (
    # handicraft: for preschoolers, often with a grandparent or parent
    CourseBase(
        "手工黏土", "handicraft", ("手工", "黏土", "亲子"), ((PRE,), (PRE, OLD)), (0.6, 0.4), True
    ),
    CourseBase(
        "折纸", "handicraft", ("手工", "折纸", "益智"), ((PRE,), (PRE, OLD)), (0.6, 0.4), True
    ),
    CourseBase(
        "亲子绘画", "handicraft", ("绘画", "亲子", "美育"), ((PRE, WRK), (PRE,)), (0.6, 0.4), True
    ),
    CourseBase("贝壳画", "handicraft", ("手工", "海洋", "贝壳"), ((PRE,), (PRE, SCH)), (0.7, 0.3)),
    CourseBase("串珠手工", "handicraft", ("手工", "串珠"), ((PRE,), (PRE, OLD)), (0.7, 0.3), True),
    CourseBase(
        "布艺小制作", "handicraft", ("手工", "布艺", "环保"), ((PRE,), (PRE, OLD)), (0.6, 0.4), True
    ),
    CourseBase("彩泥创意", "handicraft", ("手工", "彩泥", "创意"), ((PRE,),), (1.0,)),
    CourseBase(
        "绘本共读",
        "handicraft",
        ("阅读", "绘本", "亲子"),
        ((PRE, OLD), (PRE, WRK)),
        (0.5, 0.5),
        True,
    ),
    # intangible heritage: school-age children, some open to the elderly too
    CourseBase(
        "剪纸",
        "intangible_heritage",
        ("非遗", "剪纸", "传统文化"),
        ((SCH,), (SCH, OLD)),
        (0.7, 0.3),
    ),
    CourseBase(
        "渔网编织",
        "intangible_heritage",
        ("非遗", "渔网", "海洋文化"),
        ((SCH,), (SCH, OLD)),
        (0.6, 0.4),
    ),
    CourseBase(
        "越剧", "intangible_heritage", ("非遗", "戏曲", "越剧"), ((SCH,), (SCH, OLD)), (0.5, 0.5)
    ),
    CourseBase("舟山锣鼓", "intangible_heritage", ("非遗", "锣鼓", "音乐"), ((SCH,),), (1.0,)),
    CourseBase(
        "渔民画",
        "intangible_heritage",
        ("非遗", "绘画", "海洋文化"),
        ((SCH,), (SCH, WRK)),
        (0.8, 0.2),
    ),
    CourseBase(
        "船模制作", "intangible_heritage", ("非遗", "船模", "海洋文化", "动手"), ((SCH,),), (1.0,)
    ),
    CourseBase(
        "舟山走书",
        "intangible_heritage",
        ("非遗", "曲艺", "方言"),
        ((SCH,), (SCH, OLD)),
        (0.6, 0.4),
    ),
    CourseBase(
        "贝雕", "intangible_heritage", ("非遗", "贝雕", "手工"), ((SCH,), (SCH, WRK)), (0.8, 0.2)
    ),
    CourseBase(
        "渔歌号子",
        "intangible_heritage",
        ("非遗", "渔歌", "音乐"),
        ((SCH,), (SCH, OLD)),
        (0.6, 0.4),
    ),
    # skills: working-age residents
    CourseBase("数字技能", "skills", ("数字", "电脑", "职业"), ((WRK,),), (1.0,)),
    CourseBase("办公软件应用", "skills", ("数字", "办公", "职业"), ((WRK,),), (1.0,)),
    CourseBase("烹饪", "skills", ("烹饪", "美食", "生活"), ((WRK,), (WRK, OLD)), (0.7, 0.3)),
    CourseBase("海鲜家常菜", "skills", ("烹饪", "海鲜", "生活"), ((WRK,), (WRK, OLD)), (0.7, 0.3)),
    CourseBase(
        "急救",
        "skills",
        ("急救", "健康", "安全"),
        ((WRK,), (WRK, OLD), (WRK, SCH)),
        (0.6, 0.2, 0.2),
    ),
    CourseBase("电商直播", "skills", ("数字", "电商", "创业"), ((WRK,),), (1.0,)),
    CourseBase("短视频剪辑", "skills", ("数字", "视频", "创意"), ((WRK,), (WRK, SCH)), (0.8, 0.2)),
    CourseBase("育婴护理", "skills", ("育儿", "健康", "职业"), ((WRK,),), (1.0,)),
    CourseBase("家庭理财", "skills", ("理财", "生活"), ((WRK,), (WRK, OLD)), (0.8, 0.2)),
    CourseBase("职业技能提升", "skills", ("职业", "就业"), ((WRK,),), (1.0,)),
    # interest: the elderly
    CourseBase("书法", "interest", ("书法", "传统文化", "静心"), ((OLD,), (OLD, SCH)), (0.8, 0.2)),
    CourseBase("茶艺", "interest", ("茶艺", "生活", "传统文化"), ((OLD,), (OLD, WRK)), (0.7, 0.3)),
    CourseBase("合唱", "interest", ("音乐", "合唱", "社交"), ((OLD,),), (1.0,)),
    CourseBase("智能手机使用", "interest", ("数字", "手机", "适老化"), ((OLD,),), (1.0,)),
    CourseBase("太极拳", "interest", ("健身", "太极", "健康"), ((OLD,), (OLD, WRK)), (0.8, 0.2)),
    CourseBase("国画", "interest", ("绘画", "国画", "传统文化"), ((OLD,),), (1.0,)),
    CourseBase("摄影", "interest", ("摄影", "数字", "户外"), ((OLD,), (OLD, WRK)), (0.6, 0.4)),
    CourseBase("养生保健", "interest", ("健康", "养生"), ((OLD,),), (1.0,)),
    CourseBase("葫芦丝", "interest", ("音乐", "乐器"), ((OLD,),), (1.0,)),
    CourseBase("八段锦", "interest", ("健身", "健康", "传统文化"), ((OLD,),), (1.0,)),
    CourseBase("插花", "interest", ("插花", "生活", "美育"), ((OLD,), (OLD, WRK)), (0.7, 0.3)),
    CourseBase("防诈骗讲堂", "interest", ("安全", "数字", "适老化"), ((OLD,),), (1.0,)),
)

LEVEL_SUFFIXES = ("入门班", "提高班", "兴趣班", "体验课", "公益课", "周末班")
FAMILY_SUFFIXES = ("亲子班", "祖孙共学班")
HOLIDAY_SUFFIXES = ("寒假班", "暑期班")

TEACHERS = {
    "handicraft": ("幼儿教师", "社工", "社区志愿者"),
    "intangible_heritage": ("非遗传承人", "非遗传承人", "文化站老师"),
    "skills": ("专业老师", "职业培训讲师", "社区志愿者"),
    "interest": ("退休教师", "社区志愿者", "专业老师"),
}
DESCRIPTION_TEMPLATES = (
    "由{teacher}授课，每周一次，共{n}次课，材料由社区提供。",
    "{street}{community}开设的{title}，适合{who}参加，共{n}次课。",
    "在{community}邻里中心上课，{teacher}带教，小班教学，共{n}次。",
    "{title}：{who}的好去处，报名后请按时签到，共{n}次课。",
)
BAND_WHO = {PRE: "学龄前儿童", SCH: "中小学生", WRK: "上班族", OLD: "老年朋友"}

# Band-level taste: a logit per (band, category), in the order of domain.CATEGORIES
# (handicraft, intangible_heritage, skills, interest).
BAND_CATEGORY_LOGITS: dict[str, tuple[float, float, float, float]] = {
    PRE: (2.0, 0.2, -1.8, -0.6),
    SCH: (0.3, 1.8, -0.2, -0.2),
    WRK: (-0.4, -0.3, 1.6, 0.3),
    OLD: (0.1, 0.3, -0.6, 1.8),
}

# Relative activity (courses looked at per resident) of each band; the elderly are the most
# active users of community courses, working-age residents the least.
BAND_ACTIVITY = {PRE: 0.45, SCH: 0.9, WRK: 0.7, OLD: 1.5}

# Usual weekday(s) and start times per target band of a course (Monday = 0).
SCHEDULES = {
    PRE: ((1, 2, 3, 5, 6), ("09:00", "09:30", "15:30")),
    SCH: ((5, 6), ("09:00", "14:00", "15:00")),
    WRK: ((1, 3, 5, 6), ("19:00", "19:30", "10:00")),
    OLD: ((0, 1, 2, 3, 4), ("08:30", "09:00", "14:30")),
}

# Scores: how much each effect adds to a course's appeal (logit scale). Written to the side file.
EFFECTS = {
    "individual_category_sd": 1.5,
    "factor_sd": 0.45,
    "course_popularity_sd": 0.8,
    "target_band_match": 0.8,
    "same_community": 2.2,
    "same_street": 0.9,
    "school_holiday_for_school_age": 1.5,
    "inclusive_fee": 0.2,
    "value_added_fee_for_elderly": -0.6,
    "leading_community_venue": 0.2,
}

HOUSEHOLD_TYPES = (  # name, share of households
    ("elderly_single", 0.10),
    ("elderly_couple", 0.10),
    ("old_and_small", 0.10),  # grandparent(s) raising a preschool grandchild
    ("three_generation", 0.10),
    ("parent_school_age", 0.22),
    ("parent_preschool", 0.10),
    ("single_adult", 0.16),
    ("adult_couple", 0.12),
)

HIDDEN_ARRAYS = {  # what each array of hidden_tastes.npz holds
    "favourite_category": "per resident: index into categories of the highest affinity",
    "resident_category_affinity": "per resident x category: band logit + own deviation",
    "resident_factors": "per resident latent factors, dot course_factors adds to appeal",
    "resident_activity": "per resident relative activity (courses looked at)",
    "course_factors": "per course latent factors",
    "course_popularity": "per course popularity logit",
}
