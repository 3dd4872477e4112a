from django import forms

from apps.common.forms import PriceFormField
from apps.market.choices import Side


class OrderForm(forms.Form):
    interval_start = forms.ChoiceField(label="Delivery interval")
    side = forms.ChoiceField(choices=Side.choices)
    quantity_wh = forms.IntegerField(label="Quantity (Wh)", min_value=1)
    limit_price = PriceFormField(label="Limit price (per kWh)")

    def __init__(self, *args, interval_choices: list[tuple[str, str]], **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["interval_start"].choices = interval_choices


class TradeFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    side = forms.ChoiceField(required=False, choices=[("", "Both"), *Side.choices])
