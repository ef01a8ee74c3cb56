"""Transactional SMS written by us: the kind of ham the public corpora do not have.

The corpora's "ham" is web and news fragments (80w) or personal chat and brand marketing (mudou);
they hold almost no verification codes, bills, deliveries, appointments or school and government
notices, which are most of what an SMS platform sends. Trained without them, the model reads the
vocabulary of any signed notice (尊敬的客户, 请及时, 办理) as advert vocabulary and flags real
notices. These templates, filled from seeded slot lists, give the training side that missing
class. They are training data only: the dev split stays the corpora's, so every metric the card
reports is measured on public data, and none of the templates is taken from tests/data's golden
sets (a test checks that no generated message is a near-copy of one).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from .data import Example

SOURCE = "transactional"

_BANKS = ("工商银行", "建设银行", "农业银行", "中国银行", "交通银行", "招商银行", "浦发银行", "兴业银行",
          "民生银行", "光大银行", "中信银行", "平安银行", "邮储银行", "华夏银行", "宁波银行", "北京银行")
_TELCOS = ("中国移动", "中国联通", "中国电信", "中国广电")
_COURIERS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "极兔速递", "中国邮政", "德邦快递")
_SHOPS = ("淘宝", "京东", "拼多多", "美团", "饿了么", "唯品会", "苏宁易购", "天猫超市", "盒马", "叮咚买菜")
_APPS = ("微信支付", "支付宝", "抖音", "小红书", "哔哩哔哩", "网易", "腾讯云", "阿里云", "百度网盘", "携程旅行",
         "12306", "滴滴出行", "高德地图", "钉钉", "飞书", "企业微信", "大众点评", "航旅纵横", "12123")
_HOSPITALS = ("市第一人民医院", "市中心医院", "妇幼保健院", "口腔医院", "中医院", "社区卫生服务中心", "儿童医院")
_SCHOOLS = ("实验小学", "第三中学", "外国语学校", "实验幼儿园", "职业技术学院", "师范大学", "第一中学")
_GOV = ("国家税务总局", "人社局", "公积金管理中心", "医保局", "交警支队", "市场监管局", "不动产登记中心",
        "社保中心", "政务服务中心", "气象局", "应急管理局", "市民热线", "街道办事处", "出入境管理局")
_UTILITIES = ("国家电网", "南方电网", "自来水公司", "燃气集团", "热力公司", "物业服务中心")
_CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆", "苏州", "长沙",
           "郑州", "天津")
_PLACES = ("科技园", "万达广场", "人民路", "中山路", "滨江大道", "高新区", "世纪大道", "解放路", "新华街")
_NAMES = ("张先生", "李女士", "王先生", "刘女士", "陈先生", "杨女士", "赵先生", "黄女士", "周先生", "吴女士")
_DEPTS = ("内科", "外科", "儿科", "眼科", "口腔科", "皮肤科", "妇产科", "骨科", "体检中心", "耳鼻喉科")
_GOODS = ("手机壳", "洗衣液", "运动鞋", "图书", "充电器", "保温杯", "纸巾", "猫粮", "耳机", "床品四件套", "大米")
_STATIONS = ("北京南", "上海虹桥", "广州南", "深圳北", "杭州东", "成都东", "武汉", "南京南", "西安北", "长沙南")
_AIRLINES = ("国航", "东航", "南航", "海航", "川航", "厦航", "深航")
_ACTIONS = ("登录", "注册", "修改密码", "绑定手机", "实名认证", "支付", "提现", "解绑银行卡", "找回密码",
            "更换手机号", "注销账户", "开通免密支付", "设备登录", "身份验证")
_PURPOSES = ("工资", "转账", "消费", "还款", "退款", "代发", "利息", "跨行转入", "快捷支付", "ATM取款", "自动扣款")


def _code(r: random.Random) -> str:
    return "".join(r.choice("0123456789") for _ in range(r.choice((4, 6, 6, 6))))


def _tail(r: random.Random) -> str:
    return f"{r.randint(0, 9999):04d}"


def _money(r: random.Random) -> str:
    return f"{r.choice((r.randint(1, 99), r.randint(100, 9999), r.randint(10000, 99999)))}.{r.randint(0, 99):02d}"


def _date(r: random.Random) -> str:
    return f"{r.randint(1, 12)}月{r.randint(1, 28)}日"


def _time(r: random.Random) -> str:
    return f"{r.randint(6, 22)}:{r.choice(('00', '15', '30', '45', f'{r.randint(0, 59):02d}'))}"


def _phone(r: random.Random) -> str:
    return r.choice((f"95{r.randint(100, 999)}", f"400-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
                     f"{r.choice(('010', '021', '020', '0755', '0571'))}-{r.randint(10000000, 99999999)}"))


def _sig(name: str) -> str:
    return f"【{name}】"


# Each template draws its own slots; the signature sits at the start or the end, as platforms send it.
_Template = Callable[[random.Random], tuple[str, str]]  # → (signature name, body)


def _verification(r: random.Random) -> tuple[str, str]:
    org = r.choice(_APPS + _BANKS + _SHOPS)
    code, mins, action = _code(r), r.choice((1, 2, 3, 5, 10, 15, 30)), r.choice(_ACTIONS)
    body = r.choice((
        f"您的验证码为{code}，{mins}分钟内有效，请勿告诉他人。",
        f"验证码：{code}，您正在进行{action}操作，{mins}分钟内有效。如非本人操作，请忽略本短信。",
        f"{code}（{org}验证码），用于{action}，请勿转发。工作人员不会向您索要验证码。",
        f"您正在{action}，校验码{code}，有效期{mins}分钟，泄露有风险。",
        f"动态密码{code}，本次{action}需要验证您的身份，{mins}分钟内有效，切勿泄露。",
        f"您的{action}验证码是{code}。为保障账户安全，请勿将验证码提供给任何人。",
    ))
    return org, body


def _bank(r: random.Random) -> tuple[str, str]:
    bank, tail, amt, bal = r.choice(_BANKS), _tail(r), _money(r), _money(r)
    when, purpose = f"{_date(r)}{_time(r)}", r.choice(_PURPOSES)
    body = r.choice((
        f"您尾号{tail}的储蓄卡{when}{purpose}收入人民币{amt}元，余额{bal}元。",
        f"您尾号{tail}的信用卡{when}消费{amt}元，可用额度{bal}元。",
        f"您尾号{tail}账户{when}{purpose}支出{amt}元，活期余额{bal}元。",
        f"您尾号{tail}的信用卡本期账单{amt}元，最低还款额{bal}元，到期还款日{_date(r)}，请按时还款。",
        f"您尾号{tail}的信用卡已于{when}自动还款{amt}元，感谢您的使用。",
        f"您尾号{tail}的借记卡将于{_date(r)}到期，新卡已寄出，请注意查收。客服{_phone(r)}",
        f"您的个人贷款本期应还{amt}元，将于{_date(r)}从尾号{tail}账户扣款，请确保余额充足。",
    ))
    return bank, body


def _delivery(r: random.Random) -> tuple[str, str]:
    courier, code = r.choice(_COURIERS), f"{r.randint(1, 30)}-{r.randint(1, 9)}-{r.randint(1000, 9999)}"
    place = r.choice(("小区菜鸟驿站", "丰巢快递柜", "门卫室", "楼下快递柜", "兔喜生活超市", "公司前台"))
    goods = r.choice(_GOODS)
    body = r.choice((
        f"您的包裹已到{place}，取件码{code}，请于{_time(r)}前取件。",
        f"您购买的{goods}已由快递员{r.choice(_NAMES)}派送中，预计{_time(r)}前送达，联系电话{_phone(r)}。",
        f"您的快件已签收，签收人：{r.choice(('本人', '家人', '前台', '快递柜'))}。如有疑问请联系{_phone(r)}。",
        f"您有一个包裹在{place}待取，凭取件码{code}领取，超时将收取保管费。",
        f"您寄往{r.choice(_CITIES)}的快件已揽收，运单尾号{_tail(r)}，可在小程序查看物流进度。",
    ))
    return courier, body


def _order(r: random.Random) -> tuple[str, str]:
    shop, goods, amt = r.choice(_SHOPS), r.choice(_GOODS), _money(r)
    body = r.choice((
        f"您的订单（尾号{_tail(r)}）已发货，商品：{goods}，请留意物流信息。",
        f"您申请的退款{amt}元已原路退回，预计1-3个工作日到账。",
        f"您的外卖订单已由骑手接单，预计{_time(r)}送达。",
        f"您的订单已支付成功，实付{amt}元，感谢您的购买。",
        f"您购买的{goods}已签收，如对商品有疑问可在订单页申请售后。",
    ))
    return shop, body


def _telco(r: random.Random) -> tuple[str, str]:
    telco, amt = r.choice(_TELCOS), _money(r)
    used, left = f"{r.randint(1, 60)}.{r.randint(0, 9)}GB", f"{r.randint(1, 30)}GB"
    service = r.choice(("补卡", "过户", "销户", "停机保号", "号码实名登记", "套餐变更"))
    body = r.choice((
        f"尊敬的客户，截至{_date(r)}，您本月已使用流量{used}，套餐内剩余{left}。",
        f"尊敬的客户，您{r.randint(1, 12)}月话费账单已出，本月消费{amt}元，账户余额{_money(r)}元。",
        f"您已成功充值{r.choice((30, 50, 100, 200))}元，当前余额{amt}元。",
        f"尊敬的客户，您的账户余额已不足{r.choice((5, 10, 20))}元，为避免停机请及时缴费。",
        f"您办理的套餐变更将于下月1日生效，如有疑问请拨打{r.choice(('10086', '10010', '10000'))}。",
        f"您的宽带将于{_date(r)}到期，续费请登录营业厅App或到就近营业厅办理。",
        f"您申请的{service}业务需本人携带身份证原件到营业厅办理。",
        f"您的携号转网申请已受理，授权码{_code(r)}，请于{_date(r)}前到新运营商营业厅办理。",
        f"您的号码已于{_date(r)}完成实名信息核验，感谢您的配合。",
        f"您预约的宽带安装师傅将于{_date(r)}{_time(r)}上门，请保持电话畅通。",
    ))
    return telco, body


def _utility(r: random.Random) -> tuple[str, str]:
    org, amt = r.choice(_UTILITIES), _money(r)
    body = r.choice((
        f"您户号尾号{_tail(r)}的电费余额为{amt}元，请及时缴费，以免影响正常用电。",
        f"您{r.randint(1, 12)}月水费{amt}元已出账，缴费截止日{_date(r)}。",
        f"因管网检修，{r.choice(_PLACES)}片区将于{_date(r)}{_time(r)}至{_time(r)}停水，请提前储水。",
        f"因线路检修，您所在小区将于{_date(r)}{_time(r)}起临时停电，预计{r.randint(2, 8)}小时恢复，敬请谅解。",
        f"您的燃气费{amt}元已缴费成功，感谢您的支持。",
        f"本周{r.choice('六日三')}将进行电梯年检，期间{r.randint(1, 20)}号楼电梯暂停使用，请业主提前安排出行。",
    ))
    return org, body


def _health(r: random.Random) -> tuple[str, str]:
    org, dept, name = r.choice(_HOSPITALS), r.choice(_DEPTS), r.choice(_NAMES)
    body = r.choice((
        f"{name}，您已预约{_date(r)}{_time(r)}{dept}门诊，就诊序号{r.randint(1, 60)}，请携带就诊卡提前到达。",
        f"您的检查报告已出，可在自助机或公众号查询。如有疑问请咨询{dept}。",
        f"温馨提示：您预约的{dept}号源将于明天{_time(r)}就诊，如需取消请提前一天操作。",
        f"{name}，您的体检预约已确认，时间{_date(r)}上午，请空腹前往{r.choice(_PLACES)}院区。",
    ))
    return org, body


def _school(r: random.Random) -> tuple[str, str]:
    org = f"{r.choice(_CITIES)}{r.choice(_SCHOOLS)}"
    body = r.choice((
        f"各位家长：{_date(r)}放假，{_date(r)}正常上课，请督促孩子注意假期安全。",
        f"家长您好，本学期期末考试安排在{_date(r)}至{_date(r)}，请提醒孩子按时作息。",
        "您的孩子今日已安全到校。",
        f"明天{_time(r)}开展消防演练，请家长配合做好孩子的安全教育。",
        f"学生体检将于{_date(r)}进行，请家长在班级群查看注意事项。",
        "您的录取通知书已通过邮政寄出，请保持电话畅通。",
    ))
    return org, body


def _gov(r: random.Random) -> tuple[str, str]:
    org = f"{r.choice(_CITIES)}{r.choice(_GOV)}"
    body = r.choice((
        f"您的个人所得税年度汇算申请已受理，退税{_money(r)}元将在审核后退至您的银行账户。",
        f"您的公积金账户{r.randint(1, 12)}月已缴存{_money(r)}元，当前余额{_money(r)}元。",
        f"您申请的业务已办结，可于工作日到{r.choice(_PLACES)}服务大厅领取。",
        f"您的机动车于{_date(r)}在{r.choice(_PLACES)}有一条交通违法记录，请及时处理。",
        f"气象台{_date(r)}{_time(r)}发布暴雨黄色预警，请注意防范，减少外出。",
        "您的居住证已办理完成，请携带身份证到受理点领取。",
        f"您的社保卡已制卡完成，请到{r.choice(_PLACES)}网点领取并激活。",
        f"您预约的{_date(r)}{_time(r)}业务办理已成功，请携带身份证原件按时到达。",
    ))
    return org, body


def _travel(r: random.Random) -> tuple[str, str]:
    a, b = r.sample(_STATIONS, 2)
    org = r.choice(("12306", "携程旅行", "航旅纵横", "去哪儿旅行")) if r.random() < 0.7 else r.choice(_AIRLINES)
    flight = f"{r.choice(('CA', 'MU', 'CZ', 'HU', '3U'))}{r.randint(1000, 9999)}"
    seat = f"{r.randint(1, 16)}车{r.randint(1, 20)}{r.choice('ABCDF')}号"
    body = r.choice((
        f"订单{_tail(r)}：{_date(r)}{a}-{b}，G{r.randint(1, 999)}次，{seat}，开车时间{_time(r)}，请提前到站。",
        f"您预订的{_date(r)}{flight}航班已出票，{_time(r)}起飞，请提前90分钟到达机场办理值机。",
        f"您乘坐的{flight}航班因天气原因延误，预计起飞时间{_time(r)}，给您带来不便敬请谅解。",
        f"您预订的{r.choice(_CITIES)}{r.choice(_PLACES)}酒店已确认，入住日期{_date(r)}，到店请出示身份证。",
        f"您的行程已结束，本次费用{_money(r)}元，已从账户扣除，感谢使用。",
    ))
    return org, body


def _work(r: random.Random) -> tuple[str, str]:
    trade = r.choice(("科技", "贸易", "物流", "建设", "医药", "教育"))
    org = f"{r.choice(_CITIES)}{trade}{r.choice(('有限公司', '集团'))}"
    name = r.choice(_NAMES)
    body = r.choice((
        f"{name}您好，请于{_date(r)}{_time(r)}到{r.choice(_PLACES)}{r.randint(1, 30)}楼参加面试，携带简历一份。",
        f"{name}，您本月工资已发放，请登录系统查看工资条。",
        f"会议通知：{_date(r)}{_time(r)}在{r.randint(1, 9)}0{r.randint(1, 9)}会议室召开部门例会，请准时参加。",
        f"您的请假申请已审批通过，假期为{_date(r)}至{_date(r)}。",
        f"您提交的报销单已审核通过，款项{_money(r)}元将于三个工作日内到账。",
    ))
    return org, body


def _property(r: random.Random) -> tuple[str, str]:
    org = f"{r.choice(_CITIES)}{r.choice(('物业', '社区居委会', '小区物业服务中心'))}"
    body = r.choice((
        f"尊敬的业主，您{r.randint(2024, 2026)}年度物业费{_money(r)}元尚未缴纳，请于{_date(r)}前到物业服务中心缴纳。",
        f"本小区将于{_date(r)}进行消杀作业，请关好门窗，看管好宠物。",
        f"您的访客已登记，车牌尾号{_tail(r)}，有效期至今日{_time(r)}。",
        f"{r.randint(1, 20)}号楼二次供水水箱将于{_date(r)}清洗，期间暂停供水，请提前储水。",
    ))
    return org, body


TEMPLATES: tuple[_Template, ...] = (
    _verification, _verification, _bank, _bank, _delivery, _order, _telco, _utility,
    _health, _school, _gov, _travel, _work, _property,
)  # verification and bank notices twice: they are the bulk of real transactional traffic

_SPACE = re.compile(r"\s+")


def generate(n: int, *, seed: int) -> list[Example]:
    """``n`` distinct transactional messages, the same for the same seed."""
    r = random.Random(seed)
    seen: set[str] = set()
    out: list[Example] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n:
            raise ValueError(f"the templates cannot give {n} distinct messages")
        org, body = r.choice(TEMPLATES)(r)
        text = _SPACE.sub(" ", f"{_sig(org)}{body}" if r.random() < 0.8 else f"{body}{_sig(org)}")
        if text in seen:
            continue
        seen.add(text)
        out.append(Example(text, 0, SOURCE))
    return out
