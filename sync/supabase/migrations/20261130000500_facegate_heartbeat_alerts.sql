-- Facegate central: a door that stops sending heartbeats is an alert (it cannot say so itself).
--
-- public.check_missing_heartbeats(max_silence) is run every minute by a scheduled job (pg_cron on
-- Supabase, see sync/supabase/README.md). It opens one alert per silent door in
-- public.device_alerts (a door provisioned but never heard from counts from its creation), closes
-- the alert when heartbeats come back, returns the alerts it opened, and announces each on the
-- `facegate_alerts` channel (pg_notify) for a listener. A Supabase Database Webhook on inserts into
-- device_alerts is the simplest way to mail or chat it to people.
--
-- Admins' tools only: doors neither see nor call any of it (RLS on, no policy for them).

create table public.device_alerts (
    id bigint generated always as identity primary key,
    device_id uuid not null references public.devices (id) on delete cascade,
    site_id uuid not null references public.sites (id),
    kind text not null check (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    raised_at timestamptz not null default now(),
    last_seen timestamptz,                   -- the last heartbeat before the silence (null: never)
    cleared_at timestamptz
);
-- at most one open alert of a kind per door
create unique index device_alerts_open on public.device_alerts (device_id, kind)
    where cleared_at is null;
create index device_alerts_site on public.device_alerts (site_id, raised_at);

alter table public.device_alerts enable row level security;
revoke all on table public.device_alerts from public, anon, authenticated;
grant select, update on table public.device_alerts to service_role;

create function public.check_missing_heartbeats(
    max_silence interval default interval '5 minutes',
    at timestamptz default now()
)
returns setof public.device_alerts
language plpgsql security invoker set search_path = '' as $$
begin
    if max_silence is null or max_silence <= interval '0' then
        raise exception using errcode = '22023', message = 'max_silence must be positive';
    end if;
    -- heartbeats are back: close the alert
    update public.device_alerts a set cleared_at = at
    from public.device_heartbeats h
    where a.kind = 'heartbeat_missing' and a.cleared_at is null
      and h.device_id = a.device_id and h.ts > at - max_silence;

    return query
    with silent as (
        select d.id as device_id, d.site_id, h.ts as last_seen
        from public.devices d
        left join public.device_heartbeats h on h.device_id = d.id
        where coalesce(h.ts, d.created_at) <= at - max_silence
    ), opened as (
        insert into public.device_alerts (device_id, site_id, kind, raised_at, last_seen)
        select s.device_id, s.site_id, 'heartbeat_missing', at, s.last_seen from silent s
        on conflict (device_id, kind) where cleared_at is null do nothing
        returning *
    ), announced as (
        select o.*, pg_notify('facegate_alerts', jsonb_build_object(
            'kind', o.kind, 'device_id', o.device_id, 'site_id', o.site_id,
            'door', (select d.name from public.devices d where d.id = o.device_id),
            'raised_at', o.raised_at, 'last_seen', o.last_seen)::text) as _n
        from opened o
    )
    select id, device_id, site_id, kind, raised_at, last_seen, cleared_at from announced;
end $$;

revoke all on function public.check_missing_heartbeats(interval, timestamptz)
    from public, anon, authenticated;
grant execute on function public.check_missing_heartbeats(interval, timestamptz) to service_role;
