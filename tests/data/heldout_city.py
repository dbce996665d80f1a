"""A held-out city for the repost acceptance check of issue 13: 澜江市, which the tuned set never saw.

Written apart from tests/data/reposts.jsonl and without looking at the detector's thresholds: another
city (districts, roads, estates), other outlets (a WeChat account, a Weibo account, a TV station, a
forum, a news portal), other departments, and the repost styles of those outlets as they appear in
practice: a WeChat copy with its account header and sign-off, a Weibo post cutting the text after about
a hundred characters with a hashtag and an @ credit, a portal page with its date/source/font-size header
and print/close links, a forum copy with a poster line and short replies below, an aggregator that
rewrites the lead and turns 昨天 into a date, a TV transcript with its reporter credit, and citizens
filing one complaint twice (12345 and the mayor's mailbox, greeting and sign-off added).

Hard negatives: the same estate with another problem, the same problem in another estate, and notices
of one template with other dates and roads. ``records()`` gives every item with its ``story`` (reposts
share it) and ``department``; ``benchmarks/reposts.py --heldout`` and tests/items/test_heldout_city.py
use it. Any resemblance of names or numbers to real persons or events is accidental.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

CITY = "澜江市"

DEPARTMENTS_YAML = """
departments:
  - id: housing
    name: 市住房和城乡建设局
    rules:
      - id: housing-estate
        expr: '电梯 OR 物业 OR 漏水 OR 交房 OR 维修基金'
        severity: normal
  - id: cityman
    name: 市城市管理局
    rules:
      - id: cityman-street
        expr: '渣土 OR 占道 OR 路灯 OR 垃圾站 OR 油烟'
        severity: normal
  - id: transport
    name: 市交通运输局
    rules:
      - id: transport-bus
        expr: '公交 OR 网约车 OR 出租车 OR 交通管制'
        severity: normal
  - id: health
    name: 市卫生健康委员会
    rules:
      - id: health-clinic
        expr: '诊所 OR 医院 OR 卫生院 OR 疫苗'
        severity: major
  - id: market
    name: 市市场监督管理局
    rules:
      - id: market-prepaid
        expr: '预付卡 OR 健身房 OR 门店关闭 OR 燃气 OR 停气'
        severity: normal
"""


@dataclass(frozen=True)
class Story:
    id: str
    department: str
    channel: str  # where the original appears: hotline | mailbox | media
    title: str
    body: str  # sentences, one paragraph a line
    date: str  # published, Asia/Shanghai


# Originals. Media items start the way papers do (澜江晚报讯); hotline items the way 12345 writes them.
STORIES = [
    Story(
        "h01",
        "housing",
        "media",
        "御景湾小区电梯频繁“罢工” 八旬老人被困半小时",
        "澜江晚报讯（记者 孟思远）11月24日下午，东湖区望江街道御景湾小区7栋一部电梯突然停在两层之间，"
        "一位八十三岁的老人被困轿厢内近半小时，直到消防员赶到才被救出。\n"
        "业主们告诉记者，这部电梯今年以来已经坏了不下十次，每次物业都只是临时修一修，没过几天又出故障。\n"
        "有业主拿出维修记录，仅10月份就报修了4次。\n"
        "小区物业负责人解释，电梯已使用十二年，部分零件老化，更换需要动用住宅专项维修基金，审批流程较长。\n"
        "东湖区住建局表示，已责成物业立即停用该电梯进行全面检测，并协助业主委员会走快速申请维修基金的程序。",
        "2026-11-25 08:30",
    ),
    Story(
        "h02",
        "housing",
        "hotline",
        "金色港湾三期交房一年多顶楼仍漏水",
        "来电人反映：其购买的临港区金色港湾三期11栋顶楼住房，2025年6月交房，至今一年多，每逢下雨屋顶就漏水，"
        "卧室墙面大面积发霉，家具泡坏。\n"
        "来电人称多次找开发商和物业维修，对方只派人在屋面刷了一层防水涂料，下雨依旧漏水。\n"
        "同楼层另有三户业主情况相同。\n"
        "来电人要求开发商彻底维修屋面防水并赔偿损失，请相关部门督促处理。",
        "2026-11-24 15:12",
    ),
    Story(
        "c01",
        "cityman",
        "media",
        "渣土车夜间抛洒 长虹大道成“泥巴路”",
        "澜江晚报讯（记者 邹晓雯）近一周来，西岭区长虹大道从工业二路口到枫桥镇方向约两公里的路段，"
        "每天早上路面都铺着一层黄泥，晴天尘土飞扬，雨天湿滑难行。\n"
        "附近居民说，每天夜里十二点以后，成队的渣土车从附近工地开出，车厢没有盖严，一路抛洒。\n"
        "11月26日凌晨，记者在现场看到，半小时内有二十多辆渣土车经过，多数没有密闭。\n"
        "一名骑电动车上班的市民说，前天早上就有人在泥地上滑倒受伤。\n"
        "西岭区城管执法大队表示，将联合交警在夜间设卡检查，查处未密闭运输和带泥上路的车辆，并追溯到相关工地。",
        "2026-11-26 07:45",
    ),
    Story(
        "c02",
        "cityman",
        "hotline",
        "桂香社区烧烤店油烟直排居民楼",
        "来电人反映：东湖区桂香社区青石巷18号一楼新开的烧烤店，每天下午五点到凌晨两点营业，"
        "油烟没有经过净化直接从后窗排出，正对着居民楼。\n"
        "来电人住在二楼，油烟和噪音让家人无法开窗，孩子咳嗽不止。\n"
        "该店还把桌椅摆到人行道上占道经营。\n"
        "来电人此前已向社区反映，未见改善，请城管部门依法查处。",
        "2026-11-25 21:40",
    ),
    Story(
        "t01",
        "transport",
        "media",
        "128路公交改线后 临港新城居民出行犯难",
        "本台消息：11月18日起，澜江公交128路取消了临港新城海棠公寓、滨海学校两个站点，改走新开通的港城大道。\n"
        "调整后，海棠公寓一带三千多户居民最近的公交站在一点五公里外，老人和学生出行很不方便。\n"
        "居民李女士说，以前在家门口坐车十分钟到学校，现在孩子每天要提前半小时出门步行去车站。\n"
        "不少居民通过12345热线反映，希望恢复原站点或者增开一条社区接驳线。\n"
        "市公交集团回应称，线路调整是为了配合港城大道通车，将在一周内评估客流，研究开通社区微循环公交。",
        "2026-11-23 19:00",
    ),
    Story(
        "t02",
        "transport",
        "mailbox",
        "反映火车站出租车拒载绕路问题",
        "尊敬的市长：我是一名经常出差的市民。\n"
        "最近两个月，我在澜江火车站南广场打出租车，三次遇到司机挑客拒载，说去东湖区太近不划算。\n"
        "11月20日晚上一位司机答应载我，却故意绕行临江路，平时三十元的车费收了五十六元。\n"
        "我当场索要发票，司机以打印机坏了为由拒绝。\n"
        "火车站是城市的窗口，希望交通运输部门加强对站点出租车的监管，设立投诉公示牌，查处拒载绕路行为。",
        "2026-11-22 10:05",
    ),
    Story(
        "m01",
        "market",
        "media",
        "“悦动”健身房突然关门 数百会员预付卡无处退",
        "东湖融媒讯 11月21日，不少市民发现，位于东湖区临江路商业街的悦动健身房大门紧锁，"
        "门上只贴了一张“装修升级”的通知。\n"
        "据会员们粗略统计，该店有五百多名会员，年卡、私教课等预付卡金额从两千元到三万元不等。\n"
        "会员张先生上个月刚花一万二千元买了私教课，只上了三节。\n"
        "有会员称，关门前一周店里还在推销“充一万送五千”的活动。\n"
        "东湖区市场监管局已经介入，登记会员信息，并联系健身房经营者，督促其提出退费方案。",
        "2026-11-22 18:20",
    ),
    Story(
        "m02",
        "market",
        "hotline",
        "枫桥镇部分居民家中燃气压力不足做饭困难",
        "来电人反映：西岭区枫桥镇南门村及周边几个小区，近十天来每天中午和傍晚燃气压力明显不足，"
        "灶具火苗很小，一锅饭要一个多小时才能煮熟，热水器也点不着。\n"
        "来电人多次拨打燃气公司客服电话，对方只说在排查，一直没有解决。\n"
        "天气转冷，老人洗澡成了难题。\n"
        "请相关部门督促燃气公司尽快查明原因，保障居民正常用气。",
        "2026-11-26 12:30",
    ),
    Story(
        "e01",
        "health",
        "media",
        "白沙县卫生院夜间无医生值班 患者深夜求医扑空",
        "澜江晚报讯（记者 何嘉）11月23日凌晨一点，白沙县沙河镇村民老周的孙子发高烧抽搐，"
        "家人抱着孩子赶到镇卫生院，却发现急诊室大门紧闭，敲了十几分钟门也没人应答。\n"
        "家人只好开车四十多分钟赶到县人民医院，医生说再晚一点后果不堪设想。\n"
        "记者了解到，沙河镇卫生院承担着周边三万多人的医疗服务，按规定应当二十四小时有医生值班。\n"
        "多名村民反映，夜里找不到医生的情况已经不是第一次。\n"
        "白沙县卫健局表示，已对该院负责人进行约谈，正在调查当晚值班人员脱岗一事，将严肃处理。",
        "2026-11-24 07:10",
    ),
    Story(
        "e02",
        "health",
        "hotline",
        "海棠公寓旁无证诊所违规输液",
        "来电人反映：临港区海棠公寓小区南门旁边有一家挂着“便民理疗”招牌的诊所，实际在给居民看病、打针、输液。\n"
        "来电人发现这家诊所墙上没有挂医疗机构执业许可证，坐诊的人也没有穿工作服，一次性针头随手扔在门口垃圾桶里。\n"
        "很多老人图方便去那里输液，存在很大安全隐患。\n"
        "请卫生监督部门核查该诊所资质，依法处理。",
        "2026-11-25 09:50",
    ),
]

# Hard negatives: another event each, in the same department as some story.
NEGATIVES = [
    Story(
        "n01",
        "housing",
        "hotline",
        "御景湾小区地下车库漏水严重",
        "来电人反映：东湖区望江街道御景湾小区地下车库顶板多处漏水，下雨时车位上积水没过脚踝，"
        "车辆被滴落的泥水弄脏，墙面电线盒也在渗水，存在触电隐患。\n"
        "来电人多次找物业，物业称要等维修基金批下来才能修。\n"
        "请相关部门督促物业尽快处理。",
        "2026-11-26 09:15",
    ),
    Story(
        "n02",
        "housing",
        "media",
        "枫林苑小区电梯频繁“罢工” 老人被困二十分钟",
        "澜江晚报讯（记者 孟思远）11月26日上午，西岭区枫林苑小区3栋一部电梯突然停在五楼和六楼之间，"
        "一位七十多岁的老人被困轿厢内二十分钟，直到维保人员赶到才被救出。\n"
        "业主们告诉记者，这部电梯今年以来已经坏了七八次，每次物业都只是临时修一修。\n"
        "小区物业负责人解释，电梯已使用十五年，部分零件老化，更换需要动用住宅专项维修基金。\n"
        "西岭区住建局表示，已责成物业停用该电梯进行检测。",
        "2026-11-27 08:30",
    ),
    Story(
        "n03",
        "cityman",
        "hotline",
        "长虹大道路灯成片不亮",
        "来电人反映：西岭区长虹大道从工业二路口到枫桥镇方向的路灯已经连续一周成片不亮，"
        "晚上路面漆黑，来往车辆和行人很多，存在安全隐患。\n"
        "请城管部门尽快维修。",
        "2026-11-27 20:10",
    ),
    Story(
        "n04",
        "cityman",
        "hotline",
        "金桂苑烧烤店油烟直排居民楼",
        "来电人反映：临港区金桂苑小区南门外新开的烧烤店，每天下午五点到凌晨两点营业，"
        "油烟没有经过净化直接从后窗排出，正对着居民楼。\n"
        "来电人住在三楼，油烟和噪音让家人无法开窗。\n"
        "该店还把桌椅摆到人行道上占道经营。\n"
        "请城管部门依法查处。",
        "2026-11-27 22:05",
    ),
    Story(
        "n05",
        "health",
        "hotline",
        "沙河镇卫生院门诊排队时间过长",
        "来电人反映：白沙县沙河镇卫生院上午门诊只开两个诊室，看病的人很多，排队要等两三个小时，"
        "老人站不住只能坐在地上。\n"
        "希望卫生院增加门诊医生和候诊座椅。",
        "2026-11-27 11:30",
    ),
]

# One notice template, several fills: the next notice is another event, never a repost.
NOTICE = (
    "因燃气管网改造施工，{date}{start}至{end}，{district}{road}沿线{estates}将暂停供气（停气）。\n"
    "请相关用户提前做好停气准备，停气期间关闭燃气总阀，恢复供气后如发现异常请及时报修。\n"
    "给您带来的不便，敬请谅解。\n"
    "咨询电话：{phone}。"
)
NOTICE_FILLS = [
    ("11月28日", "8:00", "17:00", "东湖区", "临江路", "御景湾小区、桂香社区", "0731-8861 2201"),
    ("12月2日", "9:00", "16:00", "西岭区", "长虹大道", "枫林苑、枫桥镇南门村", "0731-8861 2202"),
    ("12月5日", "8:30", "18:00", "临港区", "港城大道", "海棠公寓、金色港湾", "0731-8861 2203"),
    ("12月9日", "8:00", "12:00", "东湖区", "青石巷", "桂香社区", "0731-8861 2204"),
]


# -- repost styles of the outlets of 澜江 ---------------------------------------------------------------


def _paragraphs(story: Story) -> list[str]:
    return story.body.split("\n")


def _plain(story: Story) -> str:
    """The body as another outlet copies it: the paper's own dateline dropped."""
    text = story.body
    return re.sub(r"^(?:澜江晚报讯|东湖融媒讯|本台消息)(?:（[^）]*）)?[：:\s]*", "", text)


def wechat(story: Story) -> tuple[str, str]:
    title = f"扩散！{story.title}"
    body = (
        "澜江身边事\n"
        "关注澜江身边事，了解身边新鲜事\n"
        f"{_plain(story)}\n"
        "文章来源：澜江晚报\n"
        "图片来源：网络\n"
        "如有侵权，请联系删除\n"
        "—— END ——\n"
        "喜欢就点个“在看”吧"
    )
    return title, body


def weibo(story: Story) -> tuple[str, str]:
    text = _plain(story).replace("\n", "")
    cut = text[:95]
    return f"#澜江头条# {story.title}", f"#澜江头条#【{story.title}】{cut}……全文 网页链接 （@澜江晚报）"


def portal(story: Story) -> tuple[str, str]:
    published = story.date
    head = f"发布时间：{published}    来源：澜江晚报    作者：记者    【字体：大 中 小】"
    body = "\n".join(p for p in _paragraphs(story))
    return story.title, f"{head}\n{body}\n【打印本页】 【关闭窗口】"


def forum(story: Story) -> tuple[str, str]:
    title = f"{story.title}（转帖）"
    body = f"楼主：江边散步的猫 发表于 {story.date}\n{_plain(story)}\n1楼：顶一下，希望早日解决\n2楼：关注"
    return title, body


def aggregator(story: Story) -> tuple[str, str]:
    """An aggregator rewrites the lead sentence's opening, drops the last paragraph and dates 昨天."""
    parts = _plain(story).split("\n")
    first = re.sub(r"^(近一周来|近日|日前|11月\d+日[上下]?午?|11月\d+日凌晨)，?", "据网友爆料，", parts[0])
    kept = [first, *parts[1:-1]] if len(parts) > 2 else [first, *parts[1:]]
    title = re.sub(r"[“”]", "", story.title).replace(" ", "，")
    return title, "\n".join(kept)


def tv(story: Story) -> tuple[str, str]:
    body = _plain(story).replace("记者", "本台记者", 1)
    return f"【澜江新闻】{story.title}", f"{body}\n（澜江广播电视台记者 赵启明 方园 报道）"


def twice_filed(story: Story) -> tuple[str, str]:
    """One citizen files the same complaint in the mayor's mailbox too: greeting, own words, thanks."""
    body = story.body.replace("来电人反映：", "").replace("来电人", "我")
    return f"关于{story.title}的问题", f"领导您好：\n{body}\n盼复，谢谢！"


MEDIA_STYLES = (wechat, weibo, portal, forum, aggregator, tv)
CITIZEN_STYLES = (twice_filed, wechat, forum)
STYLE_NAMES = {f.__name__ for f in (*MEDIA_STYLES, *CITIZEN_STYLES)}


def records(seed: int = 2026) -> list[dict[str, str]]:
    """Every item of the held-out city: id, source, channel, title, content, published, story, department."""
    rnd = random.Random(seed)
    out: list[dict[str, str]] = []

    def add(
        story_id: str, dept: str, source: str, channel: str, title: str, content: str, date: str, variant: str
    ) -> None:
        out.append(
            {
                "kind": "repost" if variant in STYLE_NAMES else variant,
                "variant": variant,
                "id": f"{source}-{len(out) + 1:03d}",
                "source": source,
                "channel": channel,
                "title": title,
                "content": content,
                "published": date,
                "story": story_id,
                "department": dept,
            }
        )

    origin = {"media": "lj-news", "hotline": "lj-12345", "mailbox": "lj-mailbox"}
    for story in STORIES:
        add(story.id, story.department, origin[story.channel], story.channel, story.title, story.body, story.date,
            "original")  # fmt: skip
        styles = MEDIA_STYLES if story.channel == "media" else CITIZEN_STYLES
        for style in styles:
            title, content = style(story)
            source = {"twice_filed": "lj-mailbox"}.get(style.__name__, "lj-reposts")
            channel = "mailbox" if source == "lj-mailbox" else "media"
            add(story.id, story.department, source, channel, title, content, story.date, style.__name__)
    for story in NEGATIVES:
        add(story.id, story.department, origin[story.channel], story.channel, story.title, story.body, story.date,
            "negative")  # fmt: skip
    for n, (date, start, end, district, road, estates, phone) in enumerate(NOTICE_FILLS, 1):
        text = NOTICE.format(
            date=date, start=start, end=end, district=district, road=road, estates=estates, phone=phone
        )
        add(f"notice{n}", "market", "lj-news", "media", f"{district}{road}沿线停气通知", text, "2026-11-26 16:00",
            "template")  # fmt: skip
    rnd.shuffle(out)  # crawl order is not publication order
    return out
