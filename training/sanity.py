"""A few hand-written messages scored in the model card: a look at real-SMS shapes the corpora lack.

The corpora's ham is mostly web and news fragments, so the dev split says little about the
transactional messages a platform actually sends (codes, deliveries, bills). These are written
for this project (no corpus text) and are illustrations, not a metric.
"""

from __future__ import annotations

HAM = (
    "【某银行】您的验证码是382916，5分钟内有效，请勿泄露。",
    "【顺丰速运】您的快件已到达小区快递柜，取件码6823，请于今日20:00前取件。",
    "【中国移动】尊敬的客户，您本月话费账单已出，应缴58.00元，请及时缴费。",
    "【某医院】您已成功预约11月28日上午9:30内科门诊，请携带身份证按时就诊。",
    "【滴滴出行】您的行程已结束，本次费用23.5元，感谢使用。",
    "【国家电网】您户号尾号3021的电费余额不足20元，请及时充值以免影响用电。",
    "【某公司】您的面试安排在周三下午2点，地址为科技园A座5楼，如有疑问请回复。",
    "妈，我今晚加班，晚点回家，不用等我吃饭了。",
    "【12306】订单E123456789，张三您已购11月30日G102次3车12F号，北京南站08:00开。",
    "【支付宝】您尾号8823的银行卡于11月25日支出128.00元。",
    "【某小学】各位家长：本周五下午3点召开家长会，请准时参加。",
    "【京东】您的订单已发货，预计明天送达，物流单号JD0012345678。",
)

MARKETING = (
    "【某商城】双十一全场5折起，满300减50，详情见APP，回T退订",
    "【某咖啡】会员日买一送一，仅限本周六，拒收请回复R",
)

BAD = (
    "【恒信贷款】无抵押信用贷款，最快当天放款，月息低至0.5%，详询13812345678",
    "澳门新葡京线上娱乐城，首充送50%，日提款无上限，官网 www.xpj888.com",
    "【工商银行】您的账户存在异常，请立即登录 http://icbc-secure.cc 验证身份，否则将冻结。",
    "代开各类发票，增值税普通专用发票，正规可查，电话13912345678。",
    "美女上门服务，24小时安排，加微信 mm8899",
    "恭喜您被抽中为幸运用户，获得iPhone一部，请点击 t.cn/abc123 领取",
    "兼职刷单，日赚300-500元，在家就能做，加QQ 12345678",
)

SETS = {"ham (transactional)": HAM, "marketing with opt-out": MARKETING, "bad content": BAD}
