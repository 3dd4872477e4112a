from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.common.exceptions import DomainError
from apps.members.choices import MemberStatus
from apps.members.models import ApiToken, Member, MemberStatusChange, User
from apps.members.services import member_approve, member_set_status


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class StatusChangeInline(admin.TabularInline):
    model = MemberStatusChange
    fk_name = "member"
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "changed_by", "changed_at", "reason")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "email", "status", "role", "shares", "joined_at")
    list_filter = ("status", "role")
    search_fields = ("number", "name", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "status", "joined_at", "created_at", "updated_at")
    inlines = [StatusChangeInline]
    actions = ["approve", "suspend", "reinstate"]

    @admin.display(ordering="user__email")
    def email(self, obj: Member) -> str:
        return obj.user.email

    def _move(self, request: HttpRequest, queryset: QuerySet[Member], to_status: str, verb: str) -> None:
        moved = 0
        for member in queryset.order_by("pk"):
            try:
                if to_status == MemberStatus.ACTIVE and member.status == MemberStatus.APPLICANT:
                    member_approve(member=member, by=request.user)  # type: ignore[arg-type]
                else:
                    member_set_status(member=member, to_status=to_status, by=request.user, reason=verb)  # type: ignore[arg-type]
                moved += 1
            except DomainError as exc:
                messages.error(request, f"{member.number}: {exc.message}")
        if moved:
            messages.success(request, f"{verb.capitalize()}: {moved} membership(s).")

    @admin.action(description="Approve selected applicants", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        self._move(request, queryset.filter(status=MemberStatus.APPLICANT), MemberStatus.ACTIVE, "approved")

    @admin.action(description="Suspend selected members", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        self._move(request, queryset, MemberStatus.SUSPENDED, "suspended")

    @admin.action(description="Reinstate selected suspended members", permissions=["change"])
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        self._move(request, queryset.filter(status=MemberStatus.SUSPENDED), MemberStatus.ACTIVE, "reinstated")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__email", "prefix")
    readonly_fields = ("user", "name", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
