-- Facegate central: the event and heartbeat checks hold for direct table writes too.
--
-- Doors keep their table grants (INSERT on access_events, INSERT/UPDATE on device_heartbeats,
-- limited by RLS to their own device and site), which push_events and heartbeat use as the
-- caller. A stolen door token can also write those tables straight through PostgREST and so
-- skip what 20261130000000 checks in the functions. These triggers apply the same rules to every
-- write made with a door's token, whichever way it comes:
--
-- * access_events: the door's name from its device row; a person id the site has never had is
--   kept only as claimed_person_id (person_id and person_name emptied); ts_out_of_window computed
--   by the server; received_at is the server's clock; details, reason and person_name together
--   at most 64 KiB (5000 events a call of unbounded JSON could fill the centre's disk).
-- * device_heartbeats: a status over 64 KiB is refused; ts is the server's clock (a door cannot
--   post-date its heartbeat to hide from check_missing_heartbeats); site_id is its own site.
--
-- Writes without a door's token (service role, an admin, migrations) are left as written.

create function public.facegate_event_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    size integer;
begin
    if dev is null then
        return new;
    end if;
    size := coalesce(octet_length(new.details::text), 0) + coalesce(octet_length(new.reason), 0)
            + coalesce(octet_length(new.person_name), 0);
    if size > 65536 then
        raise exception using errcode = '22023',
            message = format('event is %s bytes of text; at most 65536', size);
    end if;
    select d.name into new.door from public.devices d where d.id = dev;
    if new.person_id is not null and not exists (
            select 1 from public.person_sites ps
             where ps.person_id = new.person_id and ps.site_id = new.site_id) then
        new.claimed_person_id := new.person_id;
        new.person_id := null;
        new.person_name := null;
    end if;
    new.ts_out_of_window := coalesce(new.ts < now() - interval '30 days'
                                     or new.ts > now() + interval '5 minutes', false);
    new.received_at := now();
    return new;
end $$;

create trigger access_events_guard before insert on public.access_events
    for each row execute function public.facegate_event_guard();

create function public.facegate_heartbeat_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
    size integer;
begin
    if public.facegate_my_device_id() is null then
        return new;
    end if;
    size := octet_length(new.status::text);
    if size > 65536 then
        raise exception using errcode = '22023',
            message = format('status is %s bytes; at most 65536', size);
    end if;
    new.ts := now();
    new.site_id := public.facegate_my_site();
    return new;
end $$;

create trigger device_heartbeats_guard before insert or update on public.device_heartbeats
    for each row execute function public.facegate_heartbeat_guard();

-- trigger functions: nobody calls them directly
revoke all on function public.facegate_event_guard(), public.facegate_heartbeat_guard()
    from public, anon, authenticated, service_role;
